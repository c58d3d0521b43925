"""Latencies that can be compared: every published row's provider re-timed on one machine in one sitting.

A row's own ``latency_p50_ms`` was measured on the day it ran, under whatever else the machine was doing, so two
rows' latencies are not one experiment. `measure_sitting` prepares each distinct provider configuration of the
published rows (its cached state; rows that share a provider and its settings share one timing), and times them
over the same questions of each task in rounds, interleaved: every round visits the configurations in a new
(seeded) order, so a load that comes and goes is spread over all of them. A question's latency is what a run
records (the provider's own per-question total where it gives one, else its batch's time over the batch), p50 over
all rounds, with each round's p50 kept for the spread.

The sitting is written beside the rows (``leaderboard/results/latency_sitting.json``); `apply_sitting` puts its
figures in place of the rows' own when the board or the report collects them, and drops the latency of a row the
sitting did not time, so nothing shown mixes days.
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import RagBenchError
from ..jsonl import write_json_atomic

SITTING_FILE = "latency_sitting.json"
FORMAT = "rag-bench-latency-sitting-1"
LATENCIES = ("latency_p50_ms", "latency_p95_ms")


@dataclass(frozen=True)
class ProviderConfig:
    """What a timing depends on: the task and split, the provider and the `-P` settings of a row's command."""

    task: str
    split: str
    provider: str
    settings: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        shown = " ".join(f"-P {k}={v}" for k, v in self.settings)
        return f"{self.task}/{self.split} {self.provider}" + (f" {shown}" if shown else "")


def command_settings(command: Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    """The `-P key=value` pairs of a recorded `rag-bench run` command, sorted (the order they are given in does not
    change the provider)."""
    pairs, words = [], list(command or [])
    for flag, value in zip(words, words[1:]):
        if flag in ("-P", "--provider-param") and "=" in value:
            key, _, setting = value.partition("=")
            pairs.append((key, setting))
    return tuple(sorted(pairs))


def provider_config(entry: Any) -> ProviderConfig:
    return ProviderConfig(entry.task, entry.split, entry.provider, command_settings(entry.command))


@dataclass
class Timing:
    """One configuration's per-question latencies, per round."""

    config: ProviderConfig
    rounds: list[list[float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        every = sorted(ms for one in self.rounds for ms in one)
        per_round = [statistics.median(one) for one in self.rounds if one]
        return {"p50_ms": statistics.median(every), "p95_ms": every[min(len(every) - 1, int(0.95 * len(every)))],
                "round_p50_ms": per_round, "spread_ms": [min(per_round), max(per_round)],
                "questions": len(self.rounds[0]) if self.rounds else 0}


def machine() -> dict[str, Any]:
    """The machine the sitting ran on, as far as Python can tell without asking anything outside it."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from ..manifest import accelerator

    return {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform(), "accelerator": accelerator()}


def per_question_ms(provided: Sequence[Any], seconds: float) -> list[float]:
    """What a run records per question: the provider's own total where it gives one, else the batch's share."""
    share = seconds * 1000 / max(1, len(provided))
    return [ev.timings_ms.get("total", share) for ev in provided]


def measure_sitting(entries: Sequence[Any], questions: int = 100, rounds: int = 3, seed: int = 0,
                    cached_only: bool = False, command: Sequence[str] = (),
                    progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Time every distinct provider configuration of `entries`, task by task, in `rounds` interleaved rounds over the
    first `questions` questions of each task's split; the sitting's record (see the module)."""
    from ..provider import provide_evidence
    from ..preparation import PREPARED_MARKER, build_provider, prepare_provider, provider_workdir
    from ..task_store import load_task

    if questions < 1 or rounds < 1:
        raise RagBenchError("--questions and --rounds must be at least 1")
    configs: dict[ProviderConfig, list[Any]] = {}
    for entry in entries:
        configs.setdefault(provider_config(entry), []).append(entry)
    if not configs:
        raise RagBenchError("no published rows to time; check the SOURCES folder and the --task/--provider filters")
    timings: dict[ProviderConfig, Timing] = {}
    skipped: dict[str, str] = {}
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for task_name, split in sorted({(c.task, c.split) for c in configs}):
        task = load_task(task_name)
        asked = task.split(split)[:questions]
        ready = {}
        for config in sorted((c for c in configs if (c.task, c.split) == (task_name, split)), key=lambda c: c.key):
            provider = build_provider(config.provider, dict(config.settings))
            if cached_only and not (provider_workdir(config.provider, provider, task) / PREPARED_MARKER).is_file():
                skipped[config.key] = "its prepared state is not cached here (--cached-only)"
                continue
            progress(f"preparing {config.key}")
            prepare_provider(config.provider, provider, task)
            batch = int(configs[config][0].manifest.get("batch_size") or 32)
            k = max(configs[config][0].manifest.get("ks") or [5])
            reader_k = configs[config][0].manifest.get("reader_k")
            ready[config] = (provider, batch, k, reader_k)
            timings[config] = Timing(config)
        order = list(ready)
        for r in range(rounds):
            random.Random(seed + r).shuffle(order)
            for config in order:
                provider, batch, k, reader_k = ready[config]
                progress(f"round {r + 1}/{rounds}: {config.key}")
                latencies = []
                for start in range(0, len(asked), batch):
                    chunk = asked[start : start + batch]
                    began = time.perf_counter()
                    provided = provide_evidence(provider, chunk, k, reader_k, name=config.provider)
                    latencies += per_question_ms(provided, time.perf_counter() - began)
                timings[config].rounds.append(latencies)
        for provider, *_ in ready.values():
            close = getattr(provider, "close", None)
            if callable(close):
                close()
    rows = {}
    for config, timing in timings.items():
        for entry in configs[config]:
            rows[entry.row_id] = {"task": entry.task, "provider": entry.provider, "config_hash": entry.config_hash,
                                  "configuration": config.key, **timing.summary()}
    return {"format": FORMAT, "started": started, "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "questions_per_task": questions, "rounds": rounds, "seed": seed,
            "command": list(command), "rows": rows,
            "skipped": {e.row_id: skipped[provider_config(e).key] for e in entries if provider_config(e).key in skipped}}


def write_sitting(sitting: dict[str, Any], results: Path) -> Path:
    path = results / SITTING_FILE
    write_json_atomic(path, sitting)
    return path


def read_sitting(results: Path) -> dict[str, Any] | None:
    """The sitting kept beside the rows in `results` (a folder of published results), or None."""
    path = results / SITTING_FILE
    if not path.is_file():
        return None
    sitting = json.loads(path.read_text(encoding="utf-8"))
    if sitting.get("format") != FORMAT:
        raise RagBenchError(f"{path} is not a latency sitting (format {sitting.get('format')!r}); re-run "
                            "`rag-bench leaderboard measure`")
    return sitting


def sitting_label(sitting: dict[str, Any]) -> str:
    """How the board and the report name the sitting their latencies come from."""
    m = sitting["machine"]
    return (f"one sitting, {sitting['started'][:10]}, {m['cpu']} ({m['cpu_count']} cores, {m['accelerator']}), "
            f"{sitting['rounds']} interleaved rounds of {sitting['questions_per_task']} questions per task")


def apply_sitting(entries: Sequence[Any], sitting: dict[str, Any] | None) -> list[Any]:
    """`entries` (leaderboard rows, `collect.Entry`) with their latencies replaced by the sitting's (the p50's interval: the spread across rounds), and
    dropped where the sitting did not time the row; unchanged when there is no sitting."""
    if sitting is None:
        return list(entries)
    label = sitting_label(sitting)
    for entry in entries:
        timed = sitting["rows"].get(entry.row_id)
        for name in LATENCIES:
            entry.aggregate.pop(name, None)
        if timed is not None and timed.get("config_hash") == entry.config_hash:
            entry.aggregate["latency_p50_ms"] = {"value": timed["p50_ms"], "ci95": list(timed["spread_ms"]),
                                                 "n": timed["questions"], "sitting": label}
            entry.aggregate["latency_p95_ms"] = {"value": timed["p95_ms"], "n": timed["questions"], "sitting": label}
    return list(entries)


def latency_note(entries: Sequence[Any]) -> str:
    """One sentence saying where the latencies of `entries` come from: a sitting (and which), or each row's own day."""
    sittings = sorted({agg["sitting"] for e in entries if (agg := e.aggregate.get("latency_p50_ms")) and "sitting" in agg})
    if sittings:
        return (f"Latencies: {'; '.join(sittings)} (`rag-bench leaderboard measure`); interval: the lowest and "
                "highest p50 across rounds.")
    if any(e.aggregate.get("latency_p50_ms") for e in entries):
        return ("Latencies: each row's own run, on its own day under that day's load, so they are not comparable "
                "across rows; `rag-bench leaderboard measure` re-times every row in one sitting.")
    return ""

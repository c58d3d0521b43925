"""`rag-bench run`: execute a planned run (`rag_bench.run_plan`) into a resumable run directory.

Orchestration only: provide and read the questions batch by batch, write each batch's records, keep the manifest's
status true on any failure, then score once (`rag_bench.evaluate.score_run`) with the complete run context.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from .diagnostics import FailureLog
from .errors import RagBenchError
from .evaluate import score_run
from .locks import exclusive
from .lookahead import Lookahead
from .manifest import now
from .metric import RunContext, RunSetup
from .plugins import warn_about_broken_plugins
from .preparation import build_provider, build_reader, prepare_provider
from .provider import EvidenceProvider, provide_evidence
from .reader import Reader, checked_answers, reader_fingerprint
from .records import failure_streak, make_record, sum_usage
from .run_dir import RunDir
from .run_plan import RunConfig, RunPlan, new_manifest, plan_run, split_reader_spec
from .types import Question

#: What other modules import from here: the run's entry points, and for convenience the building blocks a script
#: driving a provider or reader by hand needs.
__all__ = ["RunConfig", "RunPlan", "RunResult", "build_provider", "build_reader", "execute", "plan_run",
           "prepare_provider", "seed_everything", "split_reader_spec"]


@dataclass
class RunResult:
    """A finished (or resumed) run: its folder, metrics, manifest and the questions computed in this session."""

    path: Path
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    computed: int


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and (when loaded) torch's generators."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RagBenchError(f"cannot write to the runs directory {folder}: {exc.strerror}; pass --runs-dir DIR") from None


def execute(cfg: RunConfig, argv: Sequence[str] | None = None) -> RunResult:
    """Run (or resume) one configuration and return its metrics."""
    warn_about_broken_plugins()
    plan = plan_run(cfg)
    check_writable(cfg.runs_dir)
    busy = (f"another rag-bench process is running this configuration ({plan.path}); "
            "wait for it to finish or stop it, then run the command again")
    with exclusive(cfg.runs_dir / ".locks" / f"{plan.task.name}__{plan.path.name}.lock", busy, wait=False):
        return _execute_planned(cfg, plan, argv)


def _execute_planned(cfg: RunConfig, plan: RunPlan, argv: Sequence[str] | None) -> RunResult:
    provider, reader, task, split, questions, ks = plan.provider, plan.reader, plan.task, plan.split, plan.questions, plan.ks
    run = RunDir(plan.path)
    seed_everything(cfg.seed)

    setup = RunSetup(
        task=task,
        split=split,
        ks=ks,
        provider=cfg.provider,
        reader=cfg.reader,
        reader_answers=reader.answers,
        reader_settings=reader.settings(),
        judge_settings=dict(cfg.judge_params),
        max_consecutive_failures=cfg.max_consecutive_failures,
    )
    reader.limit_consecutive_failures(cfg.max_consecutive_failures)
    reader.preflight()
    reader.prepare(task)
    for judge in plan.judges(cfg.judges):
        judge.preflight(setup)
    # A reader that queues its calls (`Reader.queues_reads`) gets the next batch before this one is back, so
    # its endpoint is not idle between batches; records are still written batch by batch, in question order.
    reads_ahead = 1 if cfg.overlap and reader.queues_reads else 0
    session: dict[str, Any] = {"started": now(), "provide_overlaps_read": cfg.overlap, "reads_queued_ahead": reads_ahead}
    prepare_info = prepare_provider(cfg.provider, provider, task)
    session.update(prepare_info)

    if cfg.overwrite:  # only now: a failed preflight or preparation keeps the earlier run
        run.reset()
    run.path.mkdir(parents=True, exist_ok=True)
    manifest = run.read_manifest() if run.exists() else new_manifest(cfg, plan, argv)
    check_reader_fingerprint(manifest, reader_fingerprint(cfg.reader, reader), run.path)
    manifest["status"] = "running"
    manifest.setdefault("sessions", []).append(session)
    run.clear_metrics()
    run.write_manifest(manifest)

    done = run.read_records()
    todo = [q for q in questions if done.get(q.qid, {}).get("status") != "ok"]
    computed = 0
    streak = 0  # reader failures in a row, in question order
    log = FailureLog(run.error_log_path)
    # Batches handed to the reader and not yet written: (questions, evidence, provide seconds, answers, sent at).
    reads: deque[tuple[list[Question], list[Any], float, Future, float]] = deque()

    def provide(batch: list[Question]) -> list[Any]:
        return provide_evidence(provider, batch, ks[-1], plan.reader_k, name=cfg.provider)

    def write_oldest(bar: tqdm) -> None:
        nonlocal computed, streak
        batch, provided, provide_s, future, sent = reads[0]
        answers = checked_answers(reader, batch, future.result())
        read_ms = (time.perf_counter() - sent) * 1000 / len(batch)
        provide_ms = provide_s * 1000 / len(batch)
        records = [make_record(q, ev, ans, ev.timings_ms.get("total", provide_ms), ans.info.get("latency_ms", read_ms))
                   for q, ev, ans in zip(batch, provided, answers)]
        run.append_records(records)
        reads.popleft()
        log.write_records(records)
        computed += len(batch)
        bar.update(len(batch))
        streak = failure_streak(streak, records)
        if cfg.max_consecutive_failures and streak >= cfg.max_consecutive_failures:
            raise RagBenchError(reader_down(cfg, reader, streak, records))

    loop_started = time.perf_counter()
    try:
        with tqdm(total=len(questions), initial=len(questions) - len(todo), desc=f"{cfg.provider} on {task.name}/{split}", unit="q") as bar:
            batches = [todo[start : start + cfg.batch_size] for start in range(0, len(todo), cfg.batch_size)]
            # The next batch's provide runs while the reader reads this one; leaving the block waits for it.
            with Lookahead(provide, batches, ahead=1 if cfg.overlap else 0, name="rag-bench-provide") as provided_batches:
                provided_iter = iter(provided_batches)
                while True:
                    try:
                        batch, provided, provide_s = next(provided_iter)
                    except StopIteration:
                        break
                    except Exception:
                        while reads:  # a failed (or short) provide keeps the answers of the batch already being read
                            write_oldest(bar)
                        raise
                    sent = time.perf_counter()
                    reads.append((batch, provided, provide_s, reader.submit(batch, [p.evidence[: plan.reader_k] for p in provided]), sent))
                    while len(reads) > reads_ahead:
                        write_oldest(bar)
                while reads:
                    write_oldest(bar)
    except BaseException as exc:
        for *_, future, _sent in reads:
            future.cancel()  # a stopped run sends none of its unwritten batches' queued calls
        session["question_loop_s"] = round(time.perf_counter() - loop_started, 3)
        _stopped(run, manifest, session, exc, provider, reader)
        raise
    # The loop alone (first provide to last record written), without setup, metrics or judges: what the
    # reader's concurrency bounds.
    session["question_loop_s"] = round(time.perf_counter() - loop_started, 3)
    try:
        result = _finish(cfg, plan, run, manifest, session, setup, log)
    except BaseException as exc:
        _stopped(run, manifest, session, exc, provider, reader)
        raise
    _close(provider, reader)
    return RunResult(run.path, result, manifest, computed)


def reader_down(cfg: RunConfig, reader: Reader, streak: int, records: Sequence[dict[str, Any]]) -> str:
    """The error that stops a run whose reader failed `streak` questions in a row."""
    where = reader.settings().get("base_url") or cfg.reader
    last = next((r.get("reader_error") for r in reversed(records) if r.get("status") == "failed"), None)
    return (f"the reader endpoint {where} failed {streak} questions in a row (last: {last}); check that it is up, "
            "then run the same command again to resume (--max-consecutive-failures sets the limit)")


def _close(provider: EvidenceProvider, reader: Reader) -> None:
    """Close both, even when the first raises."""
    try:
        provider.close()
    finally:
        reader.close()


def _stopped(run: RunDir, manifest: dict[str, Any], session: dict[str, Any], exc: BaseException,
             provider: EvidenceProvider, reader: Reader) -> None:
    """Record why the run stopped (`interrupted` or `failed`, with the error) and close provider and reader."""
    manifest["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    manifest["error"] = f"{type(exc).__name__}: {exc}"
    session["ended"] = now()
    try:
        run.write_manifest(manifest)
    finally:
        _close(provider, reader)


def _finish(cfg: RunConfig, plan: RunPlan, run: RunDir, manifest: dict[str, Any], session: dict[str, Any],
            setup: RunSetup, log: FailureLog) -> dict[str, Any]:
    """After the question loop: footprint, metrics, judges; writes metrics.json and the final manifest."""
    provider, task, split, questions, ks, digest = plan.provider, plan.task, plan.split, plan.questions, plan.ks, plan.digest
    session["ended"] = now()
    session["peak_rss_bytes"] = peak_rss_bytes()
    footprint = {key: int(value) for key, value in provider.footprint().items()}
    latest = run.read_records()
    records = [latest[q.qid] for q in questions]
    first = manifest["sessions"][0]
    ctx = RunContext.after_loop(setup, {
        "prepare_s": session["build_s"],
        "footprint_bytes": footprint,
        "peak_rss_bytes": max(s.get("peak_rss_bytes", 0) for s in manifest["sessions"]),
        "num_passages": task.num_passages,
        "first_session": first,
    })
    metrics, judgements = score_run(records, questions, ctx, plan.metrics, run, log)
    metrics["run"] = {"config_hash": digest, "task": task.name, "split": split, "provider": cfg.provider, "reader": cfg.reader, "ks": list(ks)}
    manifest.pop("error", None)
    manifest["footprint_bytes"] = footprint
    manifest["usage"] = sum_usage(r.get("usage") for r in records)
    manifest["judges"], manifest["judge_settings"] = list(cfg.judges), dict(cfg.judge_params)
    manifest["judge_usage"] = {name: sum_usage(j.usage for j in judged.values()) for name, judged in judgements.items()}
    unscored = sum(info["unscored"] for info in metrics.get("judges", {}).values())
    manifest["status"] = "complete" if metrics["counts"]["failed"] == 0 and unscored == 0 else "complete_with_failures"
    manifest["ended"] = now()
    run.write_metrics(metrics)
    run.write_manifest(manifest)
    return metrics


def check_reader_fingerprint(manifest: dict[str, Any], found: dict[str, Any], path: Path) -> None:
    """Record the reader's fingerprint in the manifest; a resumed run whose reader answers differently stops."""
    section = manifest.setdefault("reader", {})
    recorded = section.get("fingerprint")
    if recorded is not None and recorded != found:
        changed = sorted(k for k in recorded.keys() | found.keys() if recorded.get(k) != found.get(k))
        raise RagBenchError(f"{path}: the reader differs from the one this run started with ({', '.join(changed)}); "
                            "pass --overwrite to start the run again")
    section["fingerprint"] = found



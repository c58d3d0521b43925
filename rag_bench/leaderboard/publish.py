"""Publish aggregated results: run the leaderboard's commands and export what may be shared.

A published result file keeps the redacted manifest (command, versions,
settings, data hashes), the aggregate scores with intervals, the machine
measurements (latency, preparation time, peak memory) apart from them, and
the per-question scores as numbers keyed by question id, which the site
needs for its paired significance tests. It leaves out records.jsonl:
questions, gold answers, evidence and answers are dataset text.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..jsonl import write_json_atomic
from ..measurements import split_aggregates
from .collect import FORMAT, Entry, collect_entries, load_result_file
from .site import slug
from .variants import differences, same_row

DECIMALS = 6


def portable_command(command: list[str]) -> list[str]:
    """The recorded command without ``--runs-dir DIR`` and ``--overwrite``: where the publisher kept runs, and
    whether an earlier run there was discarded, are not part of the configuration (`leaderboard verify` adds its
    own runs directory; a reader copying the command should not discard a run of theirs)."""
    out: list[str] = []
    skip = False
    for arg in command:
        if skip:
            skip = False
        elif arg == "--runs-dir":
            skip = True
        elif not arg.startswith("--runs-dir=") and arg != "--overwrite":
            out.append(arg)
    return out


def result_document(entry: Entry) -> dict:
    """The shareable form of one row (see the module docstring)."""
    qids = sorted({qid for values in entry.scores.values() for qid in values})
    table = {
        metric: [None if (v := values.get(qid)) is None else round(float(v), DECIMALS) for qid in qids]
        for metric, values in sorted(entry.scores.items())
    }
    scores, measurements = split_aggregates(entry.aggregate)
    return {
        "format": FORMAT,
        "manifest": {**entry.manifest, "command": portable_command(list(entry.manifest.get("command") or []))},
        "metrics": {
            "aggregate": scores,
            "measurements": measurements,
            "counts": entry.counts,
            "failed_qids": entry.failed_qids,
            "run": {"task": entry.task, "split": entry.split, "provider": entry.provider,
                    "reader": entry.reader, "config_hash": entry.config_hash,
                    "ks": entry.manifest.get("ks"), "reader_k": entry.manifest.get("reader_k")},
        },
        "per_question_scores": {"qids": qids, "metrics": table},
    }


@dataclass
class Replaced:
    """A published file that a new result replaced, and how the two differ."""

    path: Path
    entry: Entry
    differences: list[str]

    def describe(self) -> str:
        what = "; ".join(self.differences) or "same settings and version"
        return f"replaced {self.path} (config {self.entry.config_hash}, {self.entry.date[:10]}; {what})"


@dataclass
class Published:
    """One written result file and the files it replaced."""

    path: Path
    replaced: list[Replaced]


def export_results(entries: Iterable[Entry], results_dir: Path) -> list[Published]:
    """Write one result file per entry under results_dir/<task>/.

    A published row with the same task, split, provider, reader and settings
    (`variants.same_row`) is replaced: the board shows each variant's current
    figures, not its history. Rows with other settings stay beside it.
    """
    written = []
    for entry in entries:
        folder = results_dir / slug(entry.task)
        folder.mkdir(parents=True, exist_ok=True)
        replaced = []
        for old in sorted(folder.glob("*.json")):
            previous = load_result_file(old)
            if previous is not None and same_row(previous, entry):
                replaced.append(Replaced(old, previous, differences(previous, entry)))
                old.unlink()
        path = folder / f"{entry.row_id}.json"
        write_json_atomic(path, result_document(entry))
        written.append(Published(path, replaced))
    return written


@dataclass
class RunOutcome:
    """One leaderboard command and how it ended."""

    command: list[str]
    returncode: int


def leaderboard_command(provider: str, task: str, reader: str) -> list[str]:
    """The command a published row records: exactly what a user types, with the default runs dir."""
    return ["rag-bench", "run", "--provider", provider, "--task", task, "--reader", reader]


def run_commands(providers: Sequence[str], tasks: Sequence[str], reader: str, workdir: Path) -> list[RunOutcome]:
    """Run each provider x task from `workdir` (runs land in workdir/runs); a failure does not stop the rest."""
    workdir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for task in tasks:
        for provider in providers:
            command = leaderboard_command(provider, task, reader)
            print(f"$ {' '.join(command)}", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, "-m", "rag_bench.cli", *command[1:]], cwd=workdir)
            outcomes.append(RunOutcome(command, done.returncode))
    return outcomes


def finished_runs(runs_dir: Path) -> list[Entry]:
    """The finished runs (not published files) under a runs directory."""
    return [e for e in collect_entries(runs_dir) if e.records_path is not None]

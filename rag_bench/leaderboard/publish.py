"""Publish aggregated results: run the leaderboard's commands and export what may be shared.

A published result file keeps the redacted manifest (command, versions,
settings, data hashes), the aggregate metrics with intervals, and the
per-question scores as numbers keyed by question id, which the site needs
for its paired significance tests. It leaves out records.jsonl: questions,
gold answers, evidence and answers are dataset text.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..jsonl import write_json_atomic
from .collect import FORMAT, Entry, collect_entries, load_result_file
from .site import slug

DECIMALS = 6


def result_document(entry: Entry) -> dict:
    """The shareable form of one row (see the module docstring)."""
    qids = sorted({qid for values in entry.scores.values() for qid in values})
    table = {
        metric: [None if (v := values.get(qid)) is None else round(float(v), DECIMALS) for qid in qids]
        for metric, values in sorted(entry.scores.items())
    }
    return {
        "format": FORMAT,
        "manifest": entry.manifest,
        "metrics": {
            "aggregate": entry.aggregate,
            "counts": entry.counts,
            "failed_qids": entry.failed_qids,
            "run": {"task": entry.task, "split": entry.split, "provider": entry.provider,
                    "reader": entry.reader, "config_hash": entry.config_hash,
                    "ks": entry.manifest.get("ks")},
        },
        "per_question_scores": {"qids": qids, "metrics": table},
    }


def _same_row(a: Entry, b: Entry) -> bool:
    return (a.task, a.provider, a.reader, a.split) == (b.task, b.provider, b.reader, b.split)


def export_results(entries: Iterable[Entry], results_dir: Path) -> list[Path]:
    """Write one result file per entry under results_dir/<task>/.

    A result for the same task, provider, reader and split made by an
    earlier configuration is replaced: the leaderboard shows each provider's
    current figures, not its history.
    """
    written = []
    for entry in entries:
        folder = results_dir / slug(entry.task)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.json"):
            previous = load_result_file(old)
            if previous is not None and _same_row(previous, entry):
                old.unlink()
        path = folder / f"{entry.row_id}.json"
        write_json_atomic(path, result_document(entry))
        written.append(path)
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

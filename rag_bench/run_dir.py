"""A run directory: manifest.json, records.jsonl (append-only, flushed per batch), metrics.json, measurements.json,
judgements.jsonl (the judges' per-question results, append-only) and errors.log (full failure details).

Records are appended and fsync'd per batch. A run killed mid-write leaves at
most one partial last line: reading skips it and leaves the file as it is
(the leaderboard reads runs that may still be resumed); the next append, when
the run resumes, cuts it off first (`jsonl.repair_torn_tail`). The latest record
for a question wins, so a failed question retried on resume replaces its
failed record. metrics.json (the scores) exists only once a run has
finished; measurements.json beside it holds the machine-dependent figures
(latency, preparation time, peak memory; see `rag_bench.measurements`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

from .errors import RagBenchError
from .jsonl import dumps, read_jsonl, repair_torn_tail, write_json_atomic
from .measurements import split_aggregates

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
METRICS = "metrics.json"
MEASUREMENTS = "measurements.json"
JUDGEMENTS = "judgements.jsonl"
ERROR_LOG = "errors.log"


class RunDir:
    """One run's folder on disk."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def measurements_path(self) -> Path:
        return self.path / MEASUREMENTS

    @property
    def judgements_path(self) -> Path:
        return self.path / JUDGEMENTS

    @property
    def error_log_path(self) -> Path:
        return self.path / ERROR_LOG

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RagBenchError(f"{self.manifest_path}: unreadable ({exc}); rerun with --overwrite to start fresh") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.manifest_path, manifest)

    def reset(self) -> None:
        """Remove everything of an earlier run in this folder."""
        if self.path.exists():
            shutil.rmtree(self.path)

    def read_records(self) -> dict[str, dict[str, Any]]:
        """The latest record per question id, in the order of first appearance; skips a partial last line left by
        a crash and never modifies the file."""
        return _read_latest(self.records_path, ("qid",))

    def append_records(self, records: Iterable[dict[str, Any]]) -> None:
        _append(self.records_path, records)

    def read_judgements(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The latest judgement per (judge, question id)."""
        return _read_latest(self.judgements_path, ("judge", "qid"))

    def append_judgements(self, rows: Iterable[dict[str, Any]]) -> None:
        _append(self.judgements_path, rows)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """Measurements to measurements.json, then everything else to metrics.json (the run's finished mark)."""
        scores, measured = split_aggregates(metrics.get("aggregate") or {})
        write_json_atomic(self.measurements_path, {"aggregate": measured, "run": metrics.get("run")})
        write_json_atomic(self.metrics_path, {**metrics, "aggregate": scores})

    def read_metrics(self) -> dict[str, Any]:
        """metrics.json with the aggregates of measurements.json merged in (as `write_metrics` was given them)."""
        metrics = read_json(self.metrics_path)
        if self.measurements_path.is_file():
            measured = read_json(self.measurements_path).get("aggregate") or {}
            metrics["aggregate"] = dict(sorted({**metrics.get("aggregate", {}), **measured}.items()))
        return metrics

    def clear_metrics(self) -> None:
        self.metrics_path.unlink(missing_ok=True)
        self.measurements_path.unlink(missing_ok=True)


def read_json(path: Path) -> Any:
    """A JSON file, or one RagBenchError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RagBenchError(f"{path}: unreadable JSON ({exc}); remove it or rerun the run that made it") from None


def _read_latest(path: Path, key: tuple[str, ...]) -> dict[Any, dict[str, Any]]:
    """The last row per `key` (one field, or a tuple of fields) of an append-only JSONL file, read only: a partial
    last line left by a crash is skipped, a bad line before it is an error."""
    if not path.is_file():
        return {}
    rows = read_jsonl(path, key, torn_tail="skip",
                      bad_line="corrupted record: {error}; rerun with --overwrite to start fresh")
    if len(key) == 1:
        return {row[key[0]]: row for row in rows}
    return {tuple(row[field] for field in key): row for row in rows}


def _append(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows as JSON lines and fsync, so a crash loses at most the rows of this call; a partial last line a
    crash left is cut off first, so the rows start lines of their own."""
    repair_torn_tail(path)
    with open(path, "a", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())

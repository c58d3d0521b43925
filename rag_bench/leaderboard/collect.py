"""Find leaderboard rows: finished run directories and published result files.

A run directory holds manifest.json + metrics.json (+ records.jsonl); a
published result is one JSON file (``FORMAT``) with the redacted manifest,
the aggregate metrics and the per-question *scores* (numbers keyed by
question id, no dataset text), which is all that significance marks need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import RagBenchError
from ..plugins import warn
from ..run_dir import MANIFEST, METRICS, RECORDS, RunDir, read_json
from .latency import apply_sitting, read_sitting
from .redact import redact, redact_command

FORMAT = "rag-bench-result/1"
FINISHED = ("complete", "complete_with_failures")


@dataclass
class Entry:
    """One leaderboard row: a finished run of provider x task x split x reader."""

    task: str
    split: str
    provider: str
    reader: str
    config_hash: str
    command: list[str] | None
    date: str
    status: str
    counts: dict[str, int]
    aggregate: dict[str, dict[str, Any]]
    #: metric -> {qid: value}; numbers only.
    scores: dict[str, dict[str, float]]
    manifest: dict[str, Any]
    source: Path
    records_path: Path | None = None
    failed_qids: list[str] = field(default_factory=list)

    @property
    def row_id(self) -> str:
        """A file-name-safe id, unique per configuration."""
        raw = f"{self.task}__{self.provider}__{self.split}__{self.reader}__{self.config_hash}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)

    @property
    def reader_k(self) -> int | None:
        """Evidence texts the reader saw; None for rows published before reader depth was recorded."""
        return self.manifest.get("reader_k")

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The provider's metadata (trained on the corpus, base model ...); None where the row predates it."""
        return (self.manifest.get("provider") or {}).get("metadata")

    @property
    def accelerator(self) -> str | None:
        return (self.manifest.get("software") or {}).get("accelerator")

    def value(self, metric: str) -> float | None:
        agg = self.aggregate.get(metric)
        return None if agg is None else agg.get("value")

    def records(self) -> Iterator[dict[str, Any]]:
        """Per-question records (latest per qid, in file order); none for published results. Read only: the
        partial last line of a run killed mid-write is skipped, not cut off (the run may yet be resumed)."""
        if self.records_path is None:
            return iter(())
        return iter(RunDir(self.records_path.parent).read_records().values())


def _entry(manifest: dict[str, Any], metrics: dict[str, Any], scores: dict[str, dict[str, float]],
           source: Path, records_path: Path | None) -> Entry:
    run = metrics.get("run") or {}
    task = manifest.get("task") or {}
    command = manifest.get("command")
    return Entry(
        task=str(run.get("task") or task.get("name")),
        split=str(run.get("split") or task.get("split")),
        provider=str(run.get("provider") or (manifest.get("provider") or {}).get("name")),
        reader=str(run.get("reader") or (manifest.get("reader") or {}).get("name")),
        config_hash=str(run.get("config_hash") or manifest.get("config_hash")),
        command=redact_command(command) if command else None,
        date=str(manifest.get("ended") or manifest.get("created") or ""),
        status=str(manifest.get("status")),
        counts=dict(metrics.get("counts") or {}),
        aggregate=dict(metrics.get("aggregate") or {}),
        scores=scores,
        manifest=redact(manifest),
        source=source,
        records_path=records_path,
        failed_qids=list(metrics.get("failed_qids") or []),
    )


def scores_by_metric(per_question: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """metrics.json's {qid: {metric: v}} turned into {metric: {qid: v}}."""
    out: dict[str, dict[str, float]] = {}
    for qid, values in per_question.items():
        for metric, value in values.items():
            out.setdefault(metric, {})[qid] = value
    return out


def load_run_dir(path: Path) -> Entry | None:
    """The row of a finished run directory; None (with a warning) for an unfinished one."""
    manifest = read_json(path / MANIFEST)
    if manifest.get("status") not in FINISHED or not (path / METRICS).is_file():
        warn(f"{path}: run not finished (status {manifest.get('status')!r}); left off the leaderboard")
        return None
    metrics = RunDir(path).read_metrics()
    scores = scores_by_metric(metrics.get("per_question") or {})
    return _entry(manifest, metrics, scores, path, path / RECORDS)


def load_result_file(path: Path) -> Entry | None:
    """The row of a published result file; None for JSON files of another kind."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    metrics = dict(data["metrics"])
    # Measurements sit apart from the scores; results published before that keep them in `aggregate`.
    metrics["aggregate"] = {**(metrics.get("aggregate") or {}), **(metrics.pop("measurements", None) or {})}
    table = data.get("per_question_scores") or {"qids": [], "metrics": {}}
    qids = table["qids"]
    scores = {
        metric: {qid: value for qid, value in zip(qids, values) if value is not None}
        for metric, values in table["metrics"].items()
    }
    return _entry(data["manifest"], metrics, scores, path, None)


def _candidates(root: Path) -> Iterator[Path]:
    if (root / MANIFEST).is_file():
        yield root
        return
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_dir() and (path / MANIFEST).is_file():
            yield path
        elif path.is_file() and path.suffix == ".json" and not (path.parent / MANIFEST).is_file():
            yield path


def collect_entries(*roots: Path) -> list[Entry]:
    """Every finished run and published result under `roots`, one per configuration.

    Where the same configuration appears twice (a run and its published
    result), the one that finished last is kept. A root holding a latency
    sitting (`latency.SITTING_FILE`) gives its rows the sitting's latencies.
    """
    found: dict[tuple[str, str], Entry] = {}
    for root in roots:
        if not root.exists():
            raise RagBenchError(f"{root}: no such folder; pass a runs directory (e.g. runs/) or leaderboard/results")
        loaded = [load_run_dir(path) if path.is_dir() else load_result_file(path) for path in _candidates(root)]
        # a folder of published rows with a latency sitting beside them shows the sitting's latencies only
        sitting = read_sitting(root) if root.is_dir() else None
        for entry in apply_sitting([e for e in loaded if e is not None], sitting):
            key = (entry.task, entry.row_id)
            if key not in found or entry.date > found[key].date:
                found[key] = entry
    return sorted(found.values(), key=lambda e: (e.task, e.provider, e.reader, e.split, e.config_hash))

"""Which metrics a task table shows, in what order, and how numbers are written."""

from __future__ import annotations

import re
from typing import Iterable

from .collect import Entry

# Column families in display order; a metric joins the first family whose pattern matches.
FAMILIES = [
    r"em", r"f1", r"(ragas|ragchecker)[._].*", r"recall@\d+", r"hit@\d+", r"answer_recall@\d+",
    r"mrr@\d+", r"ndcg@\d+", r"evidence_.*",
]
EFFICIENCY = ["latency_p50_ms", "latency_p95_ms", "footprint_mb_per_1k", "prepare_s"]
_CUTOFF = re.compile(r"@(\d+)$")


def _order(metric: str) -> tuple[int, int, str]:
    k = _CUTOFF.search(metric)
    for rank, pattern in enumerate(FAMILIES):
        if re.fullmatch(pattern, metric):
            return rank, int(k.group(1)) if k else 0, metric
    return len(FAMILIES), int(k.group(1)) if k else 0, metric


def quality_metrics(entries: Iterable[Entry]) -> list[str]:
    """Metrics with per-question scores (the ones that get intervals and significance marks)."""
    names = {metric for e in entries for metric in e.scores if metric in e.aggregate}
    return sorted(names, key=_order)


def efficiency_metrics(entries: Iterable[Entry]) -> list[str]:
    present = {metric for e in entries for metric in e.aggregate}
    return [m for m in EFFICIENCY if m in present]


def primary_metric(entries: list[Entry]) -> str | None:
    """The headline quality figure of a task: reader answers when there are any, else retrieval."""
    quality = quality_metrics(entries)
    for preferred in ("em", "f1", "answer_recall@5", "recall@5"):
        if preferred in quality:
            return preferred
    return quality[0] if quality else None


def recall_cutoffs(entries: Iterable[Entry], family: str = "recall") -> list[int]:
    """The k values of `family@k` metrics present in any row, ascending."""
    pattern = re.compile(rf"{re.escape(family)}@(\d+)$")
    return sorted({int(m.group(1)) for e in entries for name in e.aggregate if (m := pattern.match(name))})


def fmt(value: float | None, metric: str = "") -> str:
    """A number as the table prints it."""
    if value is None or value != value:
        return "–"
    if metric.endswith("_ms") or metric.startswith(("footprint", "prepare_s", "peak_rss")):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:.3f}"

"""Which metrics a task table shows, in what order, and how numbers are written."""

from __future__ import annotations

import re
from typing import Iterable

from .collect import Entry

#: A generator's control runs and its margins over them (metrics.json names from the provider).
CONTROLS = r"(control|delta)\..*"
# Column families in display order; a metric joins the first family whose pattern matches.
FAMILIES = [
    r"em", r"f1", r"match", r"(ragas|ragchecker)[._].*", r"recall@\d+", r"hit@\d+", r"answer_recall@\d+",
    r"mrr@\d+", r"ndcg@\d+", r"evidence_.*", CONTROLS,
]
EFFICIENCY = ["latency_p50_ms", "latency_p95_ms", "footprint_mb_per_1k", "prepare_s"]
#: The headline view: (header, metric), the same columns for every task.
HEADLINE = [("EM", "em"), ("F1", "f1"), ("recall@5", "recall@5"), ("evidence ROUGE-L", "evidence_rougeL"),
            ("latency ms (p50)", "latency_p50_ms"), ("MB per 1K passages", "footprint_mb_per_1k")]
#: A generator's margin over a control (``delta.<control>.evidence_rougeL``) shown beside evidence ROUGE-L.
CONTROL_DELTA = re.compile(r"delta\.(?P<control>.+)\.evidence_rougeL$")
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


def control_metrics(entries: Iterable[Entry]) -> list[str]:
    """``control.<name>.<metric>`` and ``delta.<name>.<metric>`` aggregates, with or without per-question scores."""
    names = {metric for e in entries for metric in e.aggregate if re.fullmatch(CONTROLS, metric)}
    return sorted(names, key=_order)


def smallest_control_delta(entry: Entry) -> tuple[str, dict] | None:
    """(control name, aggregate) of the row's smallest ``delta.*.evidence_rougeL`` among the controls the evidence
    must clear (the text store, a comparison whatever its sign, has its own column in the full view); None when it
    has none."""
    found = [(agg["value"], m.group("control"), agg) for name, agg in entry.aggregate.items()
             if (m := CONTROL_DELTA.match(name)) and agg.get("value") == agg.get("value")
             and m.group("control") not in ("text_store", "query_swap")]
    if not found:
        return None
    _, control, agg = min(found, key=lambda item: (item[0], item[1]))
    return control, agg


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


def fmt(value: float | None, metric: str = "", signed: bool = False) -> str:
    """A number as the table prints it (`signed`: with + or −, for differences)."""
    if value is None or value != value:
        return "–"
    if signed:
        return f"{value:+.3f}".replace("-", "−")
    if metric.endswith("_ms") or metric.startswith(("footprint", "prepare_s", "peak_rss")):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:.3f}"

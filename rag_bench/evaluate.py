"""Turn a run's records into metrics.json: every registered metric, aggregated with intervals."""

from __future__ import annotations

from typing import Any, Sequence

from .metric import Aggregate, RunContext
from .plugins import warn
from .registry import registry
from .scoring.bootstrap import mean_with_ci
from .types import Question


def selected_metrics(judges: Sequence[str]) -> dict[str, Any]:
    """Every always-on metric plus the opt-in ones named in `judges`."""
    kind = registry().metrics
    chosen = {name: kind.get(name) for name in judges}
    for name in kind.names():
        metric = kind.get(name)
        if not getattr(metric, "opt_in", False):
            chosen.setdefault(name, metric)
    return chosen


def compute_metrics(
    records: Sequence[dict[str, Any]],
    questions: Sequence[Question],
    ctx: RunContext,
    judges: Sequence[str] = (),
) -> dict[str, Any]:
    """Per-question scores and aggregates for the records of `questions` (same order)."""
    per_question: dict[str, dict[str, float]] = {q.qid: {} for q in questions}
    aggregates: dict[str, Aggregate] = {}
    ok = [(r, q) for r, q in zip(records, questions) if r.get("status") == "ok"]
    ok_records = [r for r, _ in ok]
    ok_questions = [q for _, q in ok]
    sources: dict[str, str] = {}
    for name, metric in selected_metrics(judges).items():
        scored = metric.score(ok_records, ok_questions, ctx)
        for question, values in zip(ok_questions, scored):
            for key, value in values.items():
                if key in sources and sources[key] != name:
                    warn(f"metric {key!r} is produced by both {sources[key]!r} and {name!r}")
                sources[key] = name
                per_question[question.qid][key] = value
        aggregates.update(metric.run_level(records, ctx))
    names = sorted({key for values in per_question.values() for key in values})
    for key in names:
        values = [per_question[q.qid][key] for q in questions if key in per_question[q.qid]]
        aggregates[key] = mean_with_ci(values)
    failed = [r["qid"] for r in records if r.get("status") != "ok"]
    return {
        "aggregate": {key: aggregates[key].to_json() for key in sorted(aggregates)},
        "counts": {"questions": len(questions), "ok": len(ok), "failed": len(failed)},
        "failed_qids": failed,
        "per_question": per_question,
    }

"""Turn a run's records into metrics.json: every registered metric, aggregated with intervals."""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from .diagnostics import count_kinds, reader_failure_kind
from .judging import Judge, Judgement
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
    """Per-question scores and aggregates for the records of `questions` (same order).

    LLM judges (`rag_bench.judging.Judge`) are left out: the runner asks them
    through `judge_questions` and adds their judgements with `add_judgements`.
    """
    per_question: dict[str, dict[str, float]] = {q.qid: {} for q in questions}
    aggregates: dict[str, Aggregate] = {}
    ok = [(r, q) for r, q in zip(records, questions) if r.get("status") == "ok"]
    ok_records = [r for r, _ in ok]
    ok_questions = [q for _, q in ok]
    sources: dict[str, str] = {}
    for name, metric in selected_metrics(judges).items():
        if isinstance(metric, Judge):
            continue
        for question, values in zip(ok_questions, metric.score(ok_records, ok_questions, ctx)):
            _keep(per_question[question.qid], values, name, sources)
        aggregates.update(metric.run_level(records, ctx))
    names = sorted({key for values in per_question.values() for key in values})
    for key in names:
        values = [per_question[q.qid][key] for q in questions if key in per_question[q.qid]]
        aggregates[key] = mean_with_ci(values)
    failed = [r for r in records if r.get("status") != "ok"]
    return {
        "aggregate": {key: aggregates[key].to_json() for key in sorted(aggregates)},
        "counts": {"questions": len(questions), "ok": len(ok), "failed": len(failed)},
        "failed_qids": [r["qid"] for r in failed],
        "failures": count_kinds([reader_failure_kind(r) for r in failed]),
        "per_question": per_question,
    }


def add_judgements(metrics: dict[str, Any], questions: Sequence[Question], judgements: Mapping[str, Mapping[str, Judgement]]) -> None:
    """Add each judge's per-question values, aggregates (over scored questions, with the unscored count) and summary.

    A judge metric no question was scored for gets no aggregate (not 0.0);
    the judge's summary under `judges` says why.
    """
    sources: dict[str, str] = {}
    per_question = metrics["per_question"]
    summaries = {}
    for name, judged in judgements.items():
        for qid, judgement in judged.items():
            _keep(per_question[qid], judgement.values, name, sources)
        aggregates = {}
        for key in sorted({key for j in judged.values() for key in j.values}):
            aggregates[key] = mean_with_ci([per_question[q.qid][key] for q in questions if key in per_question[q.qid]])
        summaries[name] = _judge_summary(judged, aggregates)
        metrics["aggregate"].update({key: agg.to_json() for key, agg in aggregates.items()})
    metrics["aggregate"] = dict(sorted(metrics["aggregate"].items()))
    if summaries:
        metrics["judges"] = summaries


def _keep(into: dict[str, float], values: Mapping[str, float], name: str, sources: dict[str, str]) -> None:
    for key, value in values.items():
        if key in sources and sources[key] != name:
            warn(f"metric {key!r} is produced by both {sources[key]!r} and {name!r}")
        sources[key] = name
        into[key] = value


def _judge_summary(judged: Mapping[str, Judgement], aggregates: dict[str, Aggregate]) -> dict[str, Any]:
    """Scored and unscored counts of one judge, by failure kind; its metrics' aggregates get their unscored count."""
    unscored = {qid: j for qid, j in judged.items() if j.failures}
    per_metric = Counter(metric for j in unscored.values() for metric in j.failures)
    produced = {metric for j in judged.values() for metric in (*j.values, *j.failures)}
    for metric in produced:
        if metric in aggregates:
            aggregates[metric].unscored = per_metric.get(metric, 0)
    kinds = Counter(kind for j in unscored.values() for kind in {f.kind for f in j.failures.values()})
    summary: dict[str, Any] = {
        "questions": len(judged),
        "scored": len(judged) - len(unscored),
        "unscored": len(unscored),
        "unscored_by_kind": dict(sorted(kinds.items())),
        "unscored_qids": {qid: sorted({f"{f.kind}: {f.reason}" for f in j.failures.values()}) for qid, j in unscored.items()},
    }
    absent = sorted(metric for metric in produced if metric not in aggregates)
    if absent:
        summary["absent"] = absent
    if judged and not any(j.values for j in judged.values()):
        shown = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
        summary["note"] = f"scored none of the {len(judged)} questions ({shown}); its metrics are left out, not zero"
    elif absent:
        summary["note"] = f"no question scored for {', '.join(absent)}; left out, not zero"
    return summary

"""Turn a run's records into metrics.json in one scoring pass: every metric, then the judges, with intervals.

`score_run` is the one entry: the runner calls it once, after the question
loop, with the complete `RunContext` and the metrics it resolved from the
registry when it planned the run (`selected_metrics`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from .diagnostics import FailureLog, count_kinds, reader_failure_kind
from .judging import Judge, Judgement, judge_questions
from .metric import Aggregate, Metric, RunContext
from .plugins import warn
from .registry import Kind
from .run_dir import RunDir
from .scoring.bootstrap import mean_with_ci
from .types import Question


def selected_metrics(kind: Kind[Metric], judges: Sequence[str]) -> dict[str, Metric]:
    """Every always-on metric of the registry's `kind` plus the opt-in ones named in `judges` (an unknown name
    raises, naming the close ones)."""
    chosen = {name: kind.get(name) for name in judges}
    for name in kind.names():
        metric = kind.get(name)
        if not getattr(metric, "opt_in", False):
            chosen.setdefault(name, metric)
    return chosen


def score_run(records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext,
              metrics: Mapping[str, Metric], run: RunDir, log: FailureLog) -> tuple[dict[str, Any], dict[str, dict[str, Judgement]]]:
    """The run's metrics.json content and each judge's judgements: the metrics first (nothing is paid for
    before they succeed), then the judges over the answered questions, added beside them."""
    scores = compute_metrics(records, questions, ctx, metrics)
    judgements = judge_all(records, questions, ctx, metrics, run, log)
    add_judgements(scores, questions, judgements)
    return scores, judgements


def judge_all(records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext,
              metrics: Mapping[str, Metric], run: RunDir, log: FailureLog) -> dict[str, dict[str, Judgement]]:
    """Per judge (`rag_bench.judging.Judge`) among `metrics`, the judgement of each answered question."""
    if not ctx.reader_answers:  # nothing to judge (the preflight said so)
        return {}
    ok = [(r, q) for r, q in zip(records, questions) if r.get("status") == "ok"]
    judgements: dict[str, dict[str, Judgement]] = {}
    with log.capture_libraries():
        for name, judge in metrics.items():
            if isinstance(judge, Judge):
                judgements[name] = judge_questions(name, judge, [r for r, _ in ok], [q for _, q in ok], ctx, run, log)
    return judgements


def compute_metrics(
    records: Sequence[dict[str, Any]],
    questions: Sequence[Question],
    ctx: RunContext,
    metrics: Mapping[str, Metric],
) -> dict[str, Any]:
    """Per-question scores and aggregates of every metric but the judges, for the records of `questions` (same
    order); `judge_all` asks the judges and `add_judgements` adds their values."""
    per_question: dict[str, dict[str, float]] = {q.qid: {} for q in questions}
    aggregates: dict[str, Aggregate] = {}
    ok = [(r, q) for r, q in zip(records, questions) if r.get("status") == "ok"]
    ok_records = [r for r, _ in ok]
    ok_questions = [q for _, q in ok]
    sources: dict[str, str] = {}
    for name, metric in metrics.items():
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

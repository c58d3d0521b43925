"""LLM judges: per-question judgements that say when a question could not be scored, kept so a re-run resumes.

A judge (`Judge`) returns one `Judgement` per question: the values it
scored and, for each metric it could not score, a `Failure` with a short
kind ("unparseable verdict", "timeout", "no claims", ...) and a reason.
An unscored metric is never a zero: aggregates are over the scored
questions and the unscored count stands beside them (`rag_bench.evaluate`).

`judge_questions` asks a judge only for the questions it has not scored
yet: every judgement is appended to the run's ``judgements.jsonl`` with a
fingerprint of what it judged (answer, evidence, gold answers, the judge's
settings), and one whose fingerprint still matches and has no failure is
reused. Full exception texts go to the run's ``errors.log``, never the terminal.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from .diagnostics import Failure, FailureLog
from .errors import RagBenchError
from .jsonl import fingerprint
from .metric import Metric, RunContext
from .types import Question

if TYPE_CHECKING:
    from .run_dir import RunDir

#: The failure kind of a call not sent because its endpoint failed too many calls in a row; it stops the run.
ENDPOINT_DOWN = "endpoint down"


@dataclass
class Judgement:
    """One question's outcome from a judge: the values it scored and, per metric it could not score, why."""

    values: dict[str, float] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    #: Token counts of the judge's calls for this question (and `cost_usd` when priced).
    usage: dict[str, float] = field(default_factory=dict)

    def fail(self, names: Sequence[str], failure: Failure) -> "Judgement":
        """Mark `names` unscored (dropping any value they had) and return self."""
        for name in names:
            self.values.pop(name, None)
            self.failures[name] = failure
        return self

    def to_row(self, judge: str, qid: str, key: str) -> dict[str, Any]:
        failures = {name: {"kind": f.kind, "reason": f.reason} for name, f in self.failures.items()}
        return {"judge": judge, "qid": qid, "key": key, "values": self.values, "failures": failures, "usage": self.usage}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Judgement":
        failures = {name: Failure(f["kind"], f["reason"]) for name, f in (row.get("failures") or {}).items()}
        return cls(dict(row.get("values") or {}), failures, dict(row.get("usage") or {}))


class Judge(Metric):
    """An opt-in LLM judge: scores the answered questions of a run and says which it could not score.

    Implement `applicable` (the metric names a question should get) and
    `judge` (one `Judgement` per question, in order). A metric named by
    `applicable` that comes back with neither a value nor a failure is
    recorded as unscored ("no value"), so nothing is silently dropped.
    `settings` returns what, besides the record, decides the scores (model,
    endpoint, prompt options): a change re-judges every question.
    """

    opt_in: ClassVar[bool] = True
    #: Every metric name the judge can produce (for a question it failed on as a whole).
    metric_names: ClassVar[tuple[str, ...]] = ()

    def settings(self, ctx: RunContext) -> dict[str, Any]:
        return {}

    def applicable(self, record: dict[str, Any], question: Question, ctx: RunContext) -> tuple[str, ...]:
        return self.metric_names

    @abstractmethod
    def judge(self, records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext) -> list[Judgement]:
        """One `Judgement` per question (same order); calls that fail become failures, not exceptions."""

    def score(self, records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext) -> list[dict[str, float]]:
        return [j.values for j in self.judge(records, questions, ctx)]


def judge_questions(name: str, judge: Judge, records: Sequence[dict[str, Any]], questions: Sequence[Question],
                    ctx: RunContext, run: "RunDir", log: "FailureLog") -> dict[str, Judgement]:
    """The judgements of every applicable question, asking `judge` only for those not scored yet.

    New judgements are appended to the run folder before anything else can
    fail. A judge that raises has every question it was asked marked
    unscored ("judge error", traceback in the log). When a call was not sent
    because the judge's endpoint is down, the run stops with that error
    (a `RagBenchError`) once the judgements so far are saved.
    """
    settings = judge.settings(ctx)
    stored = run.read_judgements()
    results: dict[str, Judgement] = {}
    todo: list[tuple[dict[str, Any], Question, tuple[str, ...], str]] = []
    for record, question in zip(records, questions):
        names = judge.applicable(record, question, ctx)
        if not names:
            continue
        key = fingerprint({"judge": name, "settings": settings, "question": question.text, "answers": list(question.answers),
                           "answer": record.get("answer"), "evidence": record.get("evidence")}, 16)
        row = stored.get((name, question.qid))
        if row is not None and row.get("key") == key and not row.get("failures"):
            results[question.qid] = Judgement.from_row(row)
        else:
            todo.append((record, question, names, key))
    if not todo:
        return results
    try:
        fresh = judge.judge([t[0] for t in todo], [t[1] for t in todo], ctx)
        if len(fresh) != len(todo):
            raise RuntimeError(f"judge {name} returned {len(fresh)} judgements for {len(todo)} questions")
    except RagBenchError:
        raise
    except Exception as exc:
        failure = Failure.from_exception("judge error", exc)
        fresh = [Judgement().fail(t[2], failure) for t in todo]
    rows = []
    for (_, question, names, key), judgement in zip(todo, fresh):
        missing = [n for n in names if n not in judgement.values and n not in judgement.failures]
        judgement.fail(missing, Failure("no value", f"{name} returned no value"))
        results[question.qid] = judgement
        rows.append(judgement.to_row(name, question.qid, key))
        for metric, failure in judgement.failures.items():
            log.write(name, question.qid, metric, failure)
    run.append_judgements(rows)
    down = next((f for j in fresh for f in j.failures.values() if f.kind == ENDPOINT_DOWN), None)
    if down is not None:
        raise RagBenchError(f"{name}: {down.reason}")
    return results

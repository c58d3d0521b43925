"""The `ragas` judge: RAGAS 0.4 faithfulness, answer relevancy, context precision and context recall.

Uses the metric collections of ragas 0.4 (`ragas.metrics.collections`,
scored with `ascore`) over an instructor LLM from `ragas.llms.llm_factory`
bound to the judges' endpoint (temperature 0, the `-J seed`), every call
through the cached client. Per question: ``ragas_faithfulness`` and
``ragas_answer_relevancy`` need a reader answer, the context metrics need
evidence, and ``ragas_context_precision`` / ``ragas_context_recall`` also a
gold answer (the reference). A metric is unscored, with the reason, when its
verdict does not parse after `-J parse_retries` re-asks, when a call fails
after its retries, or when RAGAS returns no number (NaN: e.g. no statements
found in the answer).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Awaitable, Callable, Sequence

from rag_bench.api import Failure, Judgement, Question, RunContext

from .settings import JudgeParams, JudgeSession, judge_params
from .shared import EndpointJudge, call_failure, start

PREFIX = "ragas_"
NAMES = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


def _embeddings(params: JudgeParams, session: JudgeSession) -> Any:
    kind, _, name = params.embeddings.partition(":")
    if kind == "hf":
        from ragas.embeddings import HuggingFaceEmbeddings

        return HuggingFaceEmbeddings(model=name)
    from ragas.embeddings import OpenAIEmbeddings

    return OpenAIEmbeddings(client=session.client, model=name)


def _contexts(record: dict[str, Any]) -> list[str]:
    return [text for text in record.get("evidence") or [] if text.strip()]


def _failure(exc: BaseException) -> Failure:
    """A failed `ascore`: a failed call, else a verdict instructor could not parse within its retries."""
    failed = call_failure(exc)
    if failed is not None:
        return failed
    attempts = getattr(exc, "n_attempts", None)
    if type(exc).__name__ == "InstructorRetryException":
        return Failure.from_exception("unparseable verdict", exc, f"no valid verdict after {attempts} attempts")
    return Failure.from_exception(f"error ({type(exc).__name__})", exc)


class RagasJudge(EndpointJudge):
    """RAGAS judge metrics per question, through the judges' OpenAI-compatible endpoint."""

    description = "ragas_faithfulness, ragas_answer_relevancy, ragas_context_precision, ragas_context_recall (LLM judge)"
    metric_names = tuple(PREFIX + name for name in NAMES)

    def applicable(self, record: dict[str, Any], question: Question, ctx: RunContext) -> tuple[str, ...]:
        if not record.get("answer"):
            return ()
        names = ["answer_relevancy"]
        if _contexts(record):
            names.append("faithfulness")
            if question.answers:
                names += ["context_precision", "context_recall"]
        return tuple(PREFIX + name for name in names)

    def judge(self, records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext) -> list[Judgement]:
        params = judge_params(ctx)
        start(params)
        from ragas.llms import llm_factory
        from ragas.metrics.collections import AnswerRelevancy, ContextPrecision, ContextRecall, Faithfulness

        with JudgeSession(params, ctx.max_consecutive_failures) as session:
            llm = llm_factory(params.model, client=session.client, max_retries=params.parse_retries, **session.sampling)
            metrics = {
                "faithfulness": Faithfulness(llm=llm),
                "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=_embeddings(params, session)),
                "context_precision": ContextPrecision(llm=llm),
                "context_recall": ContextRecall(llm=llm),
            }

            async def one(record: dict[str, Any], question: Question) -> Judgement:
                judgement = Judgement()
                jobs = self._jobs(metrics, record, question, params, self.applicable(record, question, ctx))
                results = await asyncio.gather(*(session.call(judgement.usage, make) for make in jobs.values()),
                                               return_exceptions=True)
                for name, result in zip(jobs, results):
                    if isinstance(result, BaseException):
                        judgement.fail([PREFIX + name], _failure(result))
                    elif result.value is None or math.isnan(result.value):
                        judgement.fail([PREFIX + name], Failure("no score", f"RAGAS returned no {name} (NaN), e.g. no statements found"))
                    else:
                        judgement.values[PREFIX + name] = float(result.value)
                return judgement

            async def all_of() -> list[Judgement]:
                return list(await asyncio.gather(*(one(r, q) for r, q in zip(records, questions))))

            return session.run(all_of())

    def _jobs(self, metrics: dict[str, Any], record: dict[str, Any], question: Question,
              params: JudgeParams, wanted: Sequence[str]) -> dict[str, Callable[[], Awaitable[Any]]]:
        """The `ascore` calls (not yet started) that apply to one record, by metric name."""
        answer, contexts, text = record["answer"], _contexts(record), question.text
        reference = params.reference(question.answers) if question.answers else ""
        jobs = {
            "answer_relevancy": lambda: metrics["answer_relevancy"].ascore(user_input=text, response=answer),
            "faithfulness": lambda: metrics["faithfulness"].ascore(user_input=text, response=answer, retrieved_contexts=contexts),
            "context_precision": lambda: metrics["context_precision"].ascore(
                user_input=text, reference=reference, retrieved_contexts=contexts),
            "context_recall": lambda: metrics["context_recall"].ascore(
                user_input=text, retrieved_contexts=contexts, reference=reference),
        }
        return {name: make for name, make in jobs.items() if PREFIX + name in wanted}

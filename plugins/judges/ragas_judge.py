"""The `ragas` judge: RAGAS 0.4 faithfulness, answer relevancy, context precision and context recall.

Uses the metric collections of ragas 0.4 (`ragas.metrics.collections`,
scored with `ascore`) over an instructor LLM from `ragas.llms.llm_factory`
bound to the judges' endpoint; every call goes through the cached client.
Per question: ``ragas_faithfulness`` and ``ragas_answer_relevancy`` need a
reader answer, the context metrics need evidence, and ``ragas_context_precision``
/ ``ragas_context_recall`` also a gold answer (the reference). A question
where RAGAS returns NaN (e.g. no statements found) gets no value.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Sequence

from rag_bench.errors import RagBenchError
from rag_bench.metric import RunContext
from rag_bench.plugins import warn
from rag_bench.types import Question

from .settings import JudgeParams, JudgeSession, judge_params
from .shared import EndpointJudge, answered, start

PREFIX = "ragas_"


def _embeddings(params: JudgeParams, session: JudgeSession) -> Any:
    kind, _, name = params.embeddings.partition(":")
    if kind == "hf":
        from ragas.embeddings import HuggingFaceEmbeddings

        return HuggingFaceEmbeddings(model=name)
    from ragas.embeddings import OpenAIEmbeddings

    return OpenAIEmbeddings(client=session.client, model=name)


class RagasJudge(EndpointJudge):
    """RAGAS judge metrics per question, through the judges' OpenAI-compatible endpoint."""

    description = "ragas_faithfulness, ragas_answer_relevancy, ragas_context_precision, ragas_context_recall (LLM judge)"
    def score(self, records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext) -> list[dict[str, float]]:
        if not answered(ctx, "ragas"):
            return [{} for _ in records]
        params = judge_params(ctx)
        start(params)
        from ragas.llms import llm_factory
        from ragas.metrics.collections import AnswerRelevancy, ContextPrecision, ContextRecall, Faithfulness

        with JudgeSession(params) as session:
            llm = llm_factory(params.model, client=session.client, temperature=0.0)
            metrics = {
                "faithfulness": Faithfulness(llm=llm),
                "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=_embeddings(params, session)),
                "context_precision": ContextPrecision(llm=llm),
                "context_recall": ContextRecall(llm=llm),
            }
            jobs = [self._jobs(metrics, record, question, params) for record, question in zip(records, questions)]
            flat = [(i, name, call) for i, job in enumerate(jobs) for name, call in job.items()]

            async def run_all() -> list[Any]:
                return await asyncio.gather(*(session.gated(call) for _, _, call in flat), return_exceptions=True)

            results = session.run(run_all())
        out: list[dict[str, float]] = [{} for _ in records]
        errors = [r for r in results if isinstance(r, BaseException)]
        for (i, name, _), result in zip(flat, results):
            if not isinstance(result, BaseException) and result.value is not None and not math.isnan(result.value):
                out[i][PREFIX + name] = float(result.value)
        if flat and len(errors) == len(flat):
            raise RagBenchError(f"ragas: every judge call failed, e.g. {type(errors[0]).__name__}: {errors[0]}")
        if errors:
            warn(f"ragas: {len(errors)} of {len(flat)} judge evaluations failed and are left out, e.g. {type(errors[0]).__name__}: {errors[0]}")
        return out

    @staticmethod
    def _jobs(metrics: dict[str, Any], record: dict[str, Any], question: Question, params: JudgeParams) -> dict[str, Any]:
        """The `ascore` coroutines that apply to one record."""
        answer = record.get("answer")
        if not answer:
            return {}
        contexts = [text for text in record["evidence"] if text.strip()]
        jobs = {"answer_relevancy": metrics["answer_relevancy"].ascore(user_input=question.text, response=answer)}
        if contexts:
            jobs["faithfulness"] = metrics["faithfulness"].ascore(user_input=question.text, response=answer, retrieved_contexts=contexts)
            if question.answers:
                reference = params.reference(question.answers)
                jobs["context_precision"] = metrics["context_precision"].ascore(
                    user_input=question.text, reference=reference, retrieved_contexts=contexts)
                jobs["context_recall"] = metrics["context_recall"].ascore(
                    user_input=question.text, retrieved_contexts=contexts, reference=reference)
        return jobs

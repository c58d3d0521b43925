"""The `ragchecker` judge: RAGChecker 0.1.9 claim-level metrics.

`ragchecker.RAGChecker.evaluate` extracts claims (triplets) from the answer
and the gold answer and checks them against each other and against every
evidence text. Its LLM calls go through ``custom_llm_api_func`` to the judges'
endpoint with the cached client (so LiteLLM never calls out). Per question,
as fractions in [0, 1] (RAGChecker's own report multiplies the means by 100):
``ragchecker_precision`` / ``_recall`` / ``_f1`` (overall), ``_claim_recall``,
``_context_precision`` (retriever), ``_context_utilization``,
``_noise_sensitivity_in_relevant`` / ``_in_irrelevant``, ``_hallucination``,
``_self_knowledge``, ``_faithfulness`` (generator). Questions without
evidence get only the overall three; questions without an answer or gold
answer get none.
"""

from __future__ import annotations

from typing import Any, Sequence

from rag_bench.errors import RagBenchError
from rag_bench.metric import RunContext
from rag_bench.types import Question
from rag_bench_plugins.openai_reader.client import describe_error

from .settings import JudgeParams, JudgeSession, judge_params
from .shared import EndpointJudge, answered, start

PREFIX = "ragchecker_"


def _result(record: dict[str, Any], question: Question, params: JudgeParams) -> Any:
    from ragchecker.container import RAGResult, RetrievedDoc

    hits = record.get("hits") or []
    docs = [RetrievedDoc(doc_id=hits[i][0] if i < len(hits) else None, text=text)
            for i, text in enumerate(record["evidence"]) if text.strip()]
    return RAGResult(query_id=record["qid"], query=question.text, gt_answer=params.reference(question.answers),
                     response=record["answer"], retrieved_context=docs)


class RagcheckerJudge(EndpointJudge):
    """RAGChecker judge metrics per question, through the judges' OpenAI-compatible endpoint."""

    description = "ragchecker_precision/recall/f1, claim_recall, context_precision, faithfulness, hallucination, noise_sensitivity (LLM judge)"
    def score(self, records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext) -> list[dict[str, float]]:
        out: list[dict[str, float]] = [{} for _ in records]
        if not answered(ctx, "ragchecker"):
            return out
        params = judge_params(ctx)
        start(params)
        import openai
        from ragchecker.container import RAGResults
        from ragchecker.evaluator import RAGChecker
        from ragchecker.metrics import all_metrics, overall_metrics

        chosen = [i for i, (r, q) in enumerate(zip(records, questions)) if r.get("answer") and q.answers]
        results = {i: _result(records[i], questions[i], params) for i in chosen}
        with_evidence = RAGResults(results=[res for res in results.values() if res.retrieved_context])
        without = RAGResults(results=[res for res in results.values() if not res.retrieved_context])
        with JudgeSession(params) as session:
            batch = max(32, 4 * params.concurrency)
            checker = RAGChecker(extractor_name=params.model, checker_name=params.model, batch_size_extractor=batch,
                                 batch_size_checker=batch, custom_llm_api_func=session.complete_many)
            try:
                for group, metrics in ((with_evidence, all_metrics), (without, overall_metrics)):
                    if group.results:
                        checker.evaluate(group, metrics=metrics)
            except openai.APIError as exc:
                raise RagBenchError(f"ragchecker: a judge call failed after retries ({describe_error(exc)}); rerun to resume from the cache") from None
        for i, result in results.items():
            out[i] = {PREFIX + name: float(value) for name, value in result.metrics.items()}
        return out

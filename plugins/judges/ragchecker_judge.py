"""The `ragchecker` judge: RAGChecker 0.1.9 claim-level metrics.

`ragchecker.RAGChecker.evaluate` extracts claims (triplets) from the answer
and the gold answer and checks them against each other and against every
evidence text. Its LLM calls go through ``custom_llm_api_func`` to the judges'
endpoint with the cached client (temperature 0, the `-J seed`; LiteLLM never
calls out). Each question is evaluated on its own (up to `concurrency`
questions at once), so a failure stays with its question. Per question, as
fractions in [0, 1] (RAGChecker's own report multiplies the means by 100):
``ragchecker_precision`` / ``_recall`` / ``_f1`` (overall), ``_claim_recall``,
``_context_precision`` (retriever), ``_context_utilization``,
``_noise_sensitivity_in_relevant`` / ``_in_irrelevant``, ``_hallucination``,
``_self_knowledge``, ``_faithfulness`` (generator). Questions without
evidence get only the overall three; questions without an answer or gold
answer get none.

RAGChecker turns what it cannot read into zeros: no claims extracted gives
precision and recall 0, and a checker reply without a label for every claim
is padded with "Neutral". Here such a question is unscored instead: "no
claims" (none extracted from the answer or the gold answer) or
"unparseable verdict" (fewer labels than claims; not re-asked, since a
temperature-0 re-ask gives the same reply). RAGChecker's progress bars and
loguru messages are switched off.

RAGChecker runs in this process when it imports here (the locked set), else in
an environment of its own (`rag-bench judges install-ragchecker`, or
$RAG_BENCH_RAGCHECKER_PYTHON): one worker process per judging pass
(`ragchecker_worker.py`), whose LLM calls come back here, so the endpoint,
cache, breaker, usage and failure handling are the same either way.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from rag_bench.api import Failure, Judgement, Question, RunContext, RunSetup

from .ragchecker_env import ragchecker_python
from .ragchecker_process import RagcheckerWorker
from .settings import JudgeParams, JudgeSession, judge_params
from .shared import EndpointJudge, call_failure, start

PREFIX = "ragchecker_"
OVERALL = ("precision", "recall", "f1")
ALL = (*OVERALL, "claim_recall", "context_precision", "context_utilization", "noise_sensitivity_in_relevant",
       "noise_sensitivity_in_irrelevant", "hallucination", "self_knowledge", "faithfulness")
#: RAGChecker's joint-checking prompt (refchecker's JOINT_CHECKING_PROMPT_Q): the claims, then the label list asked for.
_CLAIMS, _ASK = "### Claims:\n", "\n\n\nYour answer should always be only a list of labels"
_LABEL = re.compile(r"\b(Entailment|Neutral|Contradiction)\b", re.IGNORECASE)


def _fields(record: dict[str, Any], question: Question, params: JudgeParams) -> dict[str, Any]:
    """What RAGChecker evaluates for one question (RAGResult's fields; evidence texts as retrieved documents)."""
    hits = record.get("hits") or []
    docs = [{"doc_id": hits[i][0] if i < len(hits) else None, "text": text}
            for i, text in enumerate(record["evidence"]) if text.strip()]
    return {"query_id": record["qid"], "query": question.text, "gt_answer": params.reference(question.answers),
            "response": record["answer"], "retrieved_context": docs}


def unparseable_verdict(prompt: str, reply: str) -> str | None:
    """Why a joint-checking reply cannot be read (fewer labels than claims), or None (also for other prompts)."""
    if _CLAIMS not in prompt or _ASK not in prompt:
        return None
    claims = [line for line in prompt.split(_CLAIMS, 1)[1].split(_ASK, 1)[0].splitlines() if line.strip()]
    labels = _LABEL.findall(reply)
    if len(labels) >= len(claims):
        return None
    return f"the checker gave {len(labels)} labels for {len(claims)} claims: {' '.join(reply.split())[:80]!r}"


def _no_claims(result: Any) -> Failure | None:
    for field, what in (("response_claims", "the answer"), ("gt_answer_claims", "the gold answer")):
        if getattr(result, field) == []:
            return Failure("no claims", f"no claims extracted from {what}")
    return None


class RagcheckerJudge(EndpointJudge):
    """RAGChecker judge metrics per question, through the judges' OpenAI-compatible endpoint."""

    description = "ragchecker_precision/recall/f1, claim_recall, context_precision, faithfulness, hallucination, noise_sensitivity (LLM judge)"
    metric_names = tuple(PREFIX + name for name in ALL)

    def applicable(self, record: dict[str, Any], question: Question, ctx: RunContext) -> tuple[str, ...]:
        if not record.get("answer") or not question.answers:
            return ()
        with_evidence = any(text.strip() for text in record.get("evidence") or [])
        return tuple(PREFIX + name for name in (ALL if with_evidence else OVERALL))

    def preflight(self, setup: RunSetup) -> None:
        if setup.reader_answers:
            ragchecker_python()  # fails fast, saying how to install RAGChecker, when it is nowhere
        super().preflight(setup)

    def judge(self, records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext) -> list[Judgement]:
        params = judge_params(ctx)
        python = ragchecker_python()
        start(params)
        with JudgeSession(params, ctx.max_consecutive_failures) as session:
            if python is not None:
                with RagcheckerWorker(python, params.concurrency) as worker:
                    return worker.judge_all([self._job(session, params, ctx, r, q) for r, q in zip(records, questions)],
                                            params.model)
            from .ragchecker_worker import evaluate, quiet

            quiet()

            def one(job: "_Job") -> Judgement:
                result, error = evaluate(job.fields, params.model, job.ask)
                return job.finish(result, error)

            with ThreadPoolExecutor(max_workers=params.concurrency, thread_name_prefix="ragchecker") as pool:
                return list(pool.map(one, [self._job(session, params, ctx, r, q) for r, q in zip(records, questions)]))

    def _job(self, session: JudgeSession, params: JudgeParams, ctx: RunContext, record: dict[str, Any],
             question: Question) -> "_Job":
        return _Job(session, self.applicable(record, question, ctx), _fields(record, question, params))


class _Job:
    """One question's RAGChecker evaluation: its LLM calls (through the session, into its usage) and its judgement."""

    def __init__(self, session: JudgeSession, names: tuple[str, ...], fields: dict[str, Any]):
        self.session, self.names, self.fields = session, names, fields
        self.judgement = Judgement()
        self.unreadable: list[str] = []
        self.call_error: Exception | None = None  # the real exception of a failed call (the worker sees its text)

    def ask(self, prompts: Sequence[str]) -> list[str]:
        try:
            replies = self.session.complete_many(prompts, self.judgement.usage)
        except Exception as exc:
            self.call_error = exc
            raise
        self.unreadable.extend(filter(None, (unparseable_verdict(p, r) for p, r in zip(prompts, replies))))
        return replies

    def finish(self, result: Any, error: Exception | None) -> Judgement:
        """The judgement from RAGChecker's evaluated result and the exception that stopped it (None if none)."""
        failure = _no_claims(result)
        if failure is None and error is not None:
            failure = call_failure(error) or Failure.from_exception(f"error ({type(error).__name__})", error)
        if failure is None and self.unreadable:
            failure = Failure("unparseable verdict", self.unreadable[0])
        if failure is not None:
            return self.judgement.fail(self.names, failure)
        self.judgement.values = {PREFIX + name: float(value) for name, value in result.metrics.items()}
        return self.judgement

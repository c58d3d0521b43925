"""Run lm-evaluation-harness generation tasks through any rag-bench evidence provider.

Importing this module registers the lm-eval model ``rag_bench``. For each
generation request it retrieves evidence for the prompt (or for one field of
the task's document) with a rag-bench provider over a rag-bench task's corpus,
and hands the lm-eval prompt plus that evidence to a rag-bench reader, whose
prompt places the evidence before the question. lm-eval's stop sequences
(``until``) are applied to the reader's answer.

lm-eval 0.4.13 finds models only in its own registry (there is no entry-point
group for models), so the command line is lm-eval's own behind this module::

    python -m rag_bench.lm_eval_bridge --model rag_bench \\
        --model_args provider=bm25,task=nq_5k,reader=openai:gpt-4o-mini,k=5 \\
        --tasks nq_open

Model arguments: ``provider`` (required), ``task`` (required: the rag-bench
task whose corpus the provider indexes), ``reader`` (default ``none``; NAME or
NAME:MODEL), ``k`` (evidence passages per prompt, default 5), ``query_field``
(a document field to retrieve with instead of the whole prompt, e.g.
``question``), ``batch_size``, and provider / reader settings as
``provider.KEY=VALUE`` / ``reader.KEY=VALUE``.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import lm_eval.models  # noqa: F401  (lazy entries of lm-eval's own models; see get_model)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from .errors import RagBenchError
from .provider import provide_evidence
from .reader import checked_answers
from .preparation import build_provider, build_reader, prepare_provider
from .run_plan import split_reader_spec
from .task_store import load_task
from .types import Question

MODEL_NAME = "rag_bench"
# Arguments lm-eval's command line passes to every model; the bridge does not use them.
LM_EVAL_EXTRAS = ("device", "max_batch_size")


def truncate_at(text: str, until: Sequence[str]) -> str:
    """`text` cut before the first stop sequence it contains."""
    cut = len(text)
    for stop in until:
        if stop:
            found = text.find(stop)
            if found != -1:
                cut = min(cut, found)
    return text[:cut]


def _split_settings(settings: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    provider, reader = {}, {}
    for key, value in settings.items():
        prefix, dot, name = key.partition(".")
        if dot and prefix == "provider":
            provider[name] = str(value)
        elif dot and prefix == "reader":
            reader[name] = str(value)
        elif key not in LM_EVAL_EXTRAS:
            raise RagBenchError(
                f"lm-eval model {MODEL_NAME}: unknown argument {key!r}; use provider, task, reader, k, query_field, "
                "batch_size, provider.KEY=VALUE or reader.KEY=VALUE"
            )
    return provider, reader


@register_model(MODEL_NAME)
class RagBenchLM(LM):
    """An lm-eval model whose generations come from a rag-bench reader given a provider's evidence."""

    def __init__(self, provider: str | None = None, task: str | None = None, reader: str = "none", k: int = 5,
                 query_field: str | None = None, batch_size: int | str | None = 32, **settings: Any):
        super().__init__()
        if not provider or not task:
            raise RagBenchError(f"lm-eval model {MODEL_NAME} needs --model_args provider=NAME,task=RAG_BENCH_TASK[,reader=...]")
        provider_params, reader_params = _split_settings(settings)
        reader_name, reader_settings = split_reader_spec(str(reader))
        reader_settings.update(reader_params)
        self.k = int(k)
        self.query_field = query_field
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 32
        self.provider_name = str(provider)
        self.provider = build_provider(self.provider_name, provider_params)
        self.reader = build_reader(reader_name, reader_settings)
        self.task = load_task(str(task))
        if self.k < 1 or self.k > len(self.task.corpus):
            raise RagBenchError(f"k={self.k} must be between 1 and the corpus size of {self.task.name} ({len(self.task.corpus)})")
        self.reader.preflight()
        self.reader.prepare(self.task)
        prepare_provider(self.provider_name, self.provider, self.task)

    def _query(self, context: str, doc: Any) -> str:
        if self.query_field is None:
            return context
        if not isinstance(doc, dict) or self.query_field not in doc:
            raise RagBenchError(f"query_field={self.query_field!r} is not a field of this lm-eval task's documents")
        return str(doc[self.query_field])

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Retrieve evidence per request, read it with the reader, cut at the request's stop sequences."""
        out: list[str] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            prompts = [(req.args[0], req.args[1] if len(req.args) > 1 else {}) for req in batch]
            retrieval = [Question(qid=f"lm-eval-{start + i}", text=self._query(ctx, req.doc), answers=(), split="lm_eval")
                         for i, ((ctx, _), req) in enumerate(zip(prompts, batch))]
            evidence = provide_evidence(self.provider, retrieval, self.k, evidence_k=self.k, name=self.provider_name)
            questions = [Question(qid=q.qid, text=ctx, answers=(), split="lm_eval") for q, (ctx, _) in zip(retrieval, prompts)]
            read = self.reader.read(questions, [list(e.evidence)[: self.k] for e in evidence])
            answers = checked_answers(self.reader, questions, read)
            for answer, (_, gen_kwargs) in zip(answers, prompts):
                if answer.error:
                    print(f"rag_bench lm-eval model: reader error: {answer.error}", file=sys.stderr)
                until = gen_kwargs.get("until") or []
                out.append(truncate_at(answer.answer or "", [until] if isinstance(until, str) else until))
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise RagBenchError(f"lm-eval model {MODEL_NAME} runs generation tasks only (output_type: generate_until)")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise RagBenchError(f"lm-eval model {MODEL_NAME} runs generation tasks only (output_type: generate_until)")


def main(argv: Sequence[str] | None = None) -> None:
    """lm-eval's own command line, with the ``rag_bench`` model registered."""
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = ["lm-eval", *argv]
    try:
        cli_evaluate()
    except RagBenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

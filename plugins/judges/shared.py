"""What both judges do before scoring: quiet the libraries, check there is something to judge, preflight."""

from __future__ import annotations

import os

from rag_bench.metric import Metric, RunContext
from rag_bench.plugins import warn
from rag_bench_plugins.openai_reader.client import preflight

from .settings import JudgeParams, judge_params

#: Set before ragas / litellm are imported: no telemetry, no network at import.
QUIET_ENV = {"RAGAS_DO_NOT_TRACK": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def quiet_libraries() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def answered(ctx: RunContext, judge: str) -> bool:
    """False (with a warning) when the run's reader produced no answers to judge."""
    if not ctx.reader_answers:
        warn(f"{judge}: the reader {ctx.reader!r} gives no answers, so there is nothing to judge; pass --reader openai:MODEL")
    return ctx.reader_answers


def start(params: JudgeParams) -> None:
    """Fail fast on a bad judge endpoint, key or model, before any judge call."""
    quiet_libraries()
    preflight(params.endpoint(), "judge", "-J", check_model=params.check_model)


class EndpointJudge(Metric):
    """An opt-in LLM judge on an OpenAI-compatible endpoint, checked before the question loop."""

    opt_in = True

    def preflight(self, ctx: RunContext) -> None:
        if ctx.reader_answers:
            start(judge_params(ctx))

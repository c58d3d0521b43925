"""What both judges share: quiet libraries, the preflight, settings, and turning a failed job into a `Failure`."""

from __future__ import annotations

import os
from typing import Any

from rag_bench.api import (
    EndpointDown, Failure, Judge, RunContext, RunSetup, api_failure, describe_error, failure_kind, preflight, warn,
)

from .settings import JudgeParams, judge_fingerprint, judge_params

#: Set before ragas / litellm are imported: no telemetry, no network at import.
QUIET_ENV = {"RAGAS_DO_NOT_TRACK": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def quiet_libraries() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def start(params: JudgeParams) -> None:
    """Fail fast on a bad judge endpoint, key or model, before any judge call."""
    quiet_libraries()
    preflight(params.endpoint(), "judge", "-J", check_model=params.check_model)


def call_failure(exc: BaseException) -> Failure | None:
    """The failure of a judge job that a failed call (timeout, HTTP error, endpoint down) explains, else None."""
    failed = api_failure(exc)
    if failed is None:
        return None
    reason = str(failed) if isinstance(failed, EndpointDown) else describe_error(failed)
    return Failure.from_exception(failure_kind(failed), exc, reason)


class EndpointJudge(Judge):
    """An opt-in LLM judge on an OpenAI-compatible endpoint, checked before the question loop."""

    def preflight(self, setup: RunSetup) -> None:
        if not setup.reader_answers:
            warn(f"the reader {setup.reader!r} gives no answers, so the judges have nothing to judge; pass --reader openai:MODEL")
            return
        start(judge_params(setup))

    def settings(self, ctx: RunContext) -> dict[str, Any]:
        return judge_fingerprint(judge_params(ctx))

"""Which endpoint the judges call: the reader's by default, overridden by `-J key=value`."""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Coroutine, Sequence, TypeVar

from rag_bench.api import (
    CircuitBreaker, EndpointDown, EndpointParams, RunSetup, api_failure, async_client, params_to_dict, parse_params,
)

T = TypeVar("T")

#: Reader settings a judge inherits when the run's reader is `openai` and -J does not set them.
INHERITED = ("model", "base_url", "api_key_env")
#: Judge settings that change speed, robustness or accounting, not scores.
RUNTIME = ("api_key_env", "concurrency", "timeout_s", "max_retries", "cache", "check_model",
           "price_input_per_1m", "price_output_per_1m")
#: The dict a judge call's token usage is added to (set per judge job by `JudgeSession.call`).
_USAGE: ContextVar[dict[str, float] | None] = ContextVar("judge_usage", default=None)


@dataclass(frozen=True)
class JudgeParams(EndpointParams):
    """Settings of the judges (`-J key=value`): the endpoint's, plus what the judges compare.

    `model`, `base_url` and `api_key_env` default to the `openai` reader's
    (else gpt-4o-mini at $OPENAI_BASE_URL or OpenAI's API, key in
    $OPENAI_API_KEY). `embeddings` (RAGAS answer relevancy) is
    ``openai:MODEL`` (the same endpoint) or ``hf:NAME_OR_PATH`` (a local
    sentence-transformers model). `gt_answer` picks the gold answer
    RAGChecker and RAGAS compare with: the first one, or all joined by " / ".
    Every judge call is sent at temperature 0 with `seed` (``-J seed=none``
    for servers that reject one); `parse_retries` bounds RAGAS's re-asks of a
    verdict that does not parse (instructor's retries).
    """

    timeout_s: float = 120.0
    embeddings: str = "openai:text-embedding-3-small"
    gt_answer: str = "first"
    seed: int | None = 0
    parse_retries: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.embeddings.startswith(("openai:", "hf:")):
            raise ValueError(f"embeddings {self.embeddings!r}: expected openai:MODEL or hf:NAME_OR_PATH")
        if self.gt_answer not in ("first", "all"):
            raise ValueError(f"gt_answer {self.gt_answer!r}: expected first or all")
        if self.parse_retries < 0:
            raise ValueError("parse_retries must be >= 0")

    def reference(self, answers: Sequence[str]) -> str:
        """The gold answer text a judge compares with."""
        return answers[0] if self.gt_answer == "first" else " / ".join(answers)


def judge_fingerprint(params: JudgeParams) -> dict[str, Any]:
    """The judge settings that decide its scores (not speed, retries, cache or prices): a change re-judges."""
    settings = {**params_to_dict(params), **params.endpoint().settings()}
    return {key: value for key, value in settings.items() if key not in RUNTIME}


def judge_params(setup: RunSetup) -> JudgeParams:
    """The judges' settings for this run: -J settings over the openai reader's endpoint."""
    raw: dict[str, Any] = {}
    if setup.reader == "openai":
        raw.update({key: setup.reader_settings[key] for key in INHERITED if setup.reader_settings.get(key) is not None})
    raw.update(setup.judge_settings)
    return parse_params(JudgeParams, raw, "judges (-J)")


class JudgeSession:
    """A cached async client on an event loop of its own thread, for one judge's scoring; close it when done.

    `call` runs one judge job under the concurrency gate and the endpoint's
    circuit breaker (after `limit` failed calls in a row the rest fail at
    once with `EndpointDown`), adding the token usage of the job's
    completions to the dict it is given. `run` may be called from any thread.
    """

    def __init__(self, params: JudgeParams, limit: int | None = None):
        self.params = params
        self.endpoint = params.endpoint()
        self.breaker = CircuitBreaker(f"judge endpoint {self.endpoint.base_url}", limit)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="judge-loop", daemon=True)
        self._thread.start()
        self.client = async_client(self.endpoint, params.concurrency, on_usage=self._add_usage)
        self.gate = asyncio.Semaphore(params.concurrency)

    @property
    def sampling(self) -> dict[str, Any]:
        """Deterministic sampling for every judge call: temperature 0 and the seed (when set)."""
        return {"temperature": 0.0, **({"seed": self.params.seed} if self.params.seed is not None else {})}

    def _add_usage(self, usage: dict[str, Any]) -> None:
        into = _USAGE.get()
        if into is not None:
            for key, value in self.params.priced(usage).items():
                into[key] = into.get(key, 0) + value

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def call(self, usage: dict[str, float], make: Callable[[], Awaitable[T]]) -> T:
        """`await make()` with the gate and the breaker; its completions' token usage is added to `usage`."""
        async with self.gate:
            self.breaker.check()
            token = _USAGE.set(usage)
            try:
                result = await make()
            except Exception as exc:
                failed = api_failure(exc)
                if failed is not None and not isinstance(failed, EndpointDown):
                    self.breaker.failure(failed)
                else:
                    self.breaker.success()  # the endpoint answered (e.g. with an unparseable verdict)
                raise
            finally:
                _USAGE.reset(token)
            self.breaker.success()
            return result

    def complete_many(self, prompts: Sequence[str], usage: dict[str, float], max_tokens: int = 1024) -> list[str]:
        """One deterministic chat completion per prompt, `concurrency` at a time (from any thread)."""

        async def one(prompt: str) -> str:
            async def make() -> str:
                response = await self.client.chat.completions.create(
                    model=self.endpoint.model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                    **self.sampling)
                return response.choices[0].message.content or ""

            return await self.call(usage, make)

        async def all_of() -> list[str]:
            return list(await asyncio.gather(*(one(p) for p in prompts)))

        return self.run(all_of())

    def close(self) -> None:
        try:
            self.run(self.client.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()

    def __enter__(self) -> "JudgeSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

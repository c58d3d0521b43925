"""Which endpoint the judges call: the reader's by default, overridden by `-J key=value`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Sequence, TypeVar

from rag_bench.metric import RunContext
from rag_bench.params import parse_params
from rag_bench_plugins.openai_reader.client import EndpointParams, async_client

T = TypeVar("T")

#: Reader settings a judge inherits when the run's reader is `openai` and -J does not set them.
INHERITED = ("model", "base_url", "api_key_env")


@dataclass(frozen=True)
class JudgeParams(EndpointParams):
    """Settings of the judges (`-J key=value`): the endpoint's, plus what the judges compare.

    `model`, `base_url` and `api_key_env` default to the `openai` reader's
    (else gpt-4o-mini at $OPENAI_BASE_URL or OpenAI's API, key in
    $OPENAI_API_KEY). `embeddings` (RAGAS answer relevancy) is
    ``openai:MODEL`` (the same endpoint) or ``hf:NAME_OR_PATH`` (a local
    sentence-transformers model). `gt_answer` picks the gold answer
    RAGChecker and RAGAS compare with: the first one, or all joined by " / ".
    """

    timeout_s: float = 120.0
    embeddings: str = "openai:text-embedding-3-small"
    gt_answer: str = "first"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.embeddings.startswith(("openai:", "hf:")):
            raise ValueError(f"embeddings {self.embeddings!r}: expected openai:MODEL or hf:NAME_OR_PATH")
        if self.gt_answer not in ("first", "all"):
            raise ValueError(f"gt_answer {self.gt_answer!r}: expected first or all")

    def reference(self, answers: Sequence[str]) -> str:
        """The gold answer text a judge compares with."""
        return answers[0] if self.gt_answer == "first" else " / ".join(answers)


def judge_params(ctx: RunContext) -> JudgeParams:
    """The judges' settings for this run: -J settings over the openai reader's endpoint."""
    raw: dict[str, Any] = {}
    if ctx.reader == "openai":
        raw.update({key: ctx.reader_settings[key] for key in INHERITED if ctx.reader_settings.get(key) is not None})
    raw.update(ctx.judge_settings)
    return parse_params(JudgeParams, raw, "judges (-J)")


class JudgeSession:
    """An event loop and a cached async client for one judge's scoring; close it when done."""

    def __init__(self, params: JudgeParams):
        self.params = params
        self.endpoint = params.endpoint()
        self.loop = asyncio.new_event_loop()
        self.client = async_client(self.endpoint, params.concurrency)
        self.gate = asyncio.Semaphore(params.concurrency)

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    async def gated(self, awaitable: Awaitable[T]) -> T:
        async with self.gate:
            return await awaitable

    def complete_many(self, prompts: Sequence[str], max_tokens: int = 1024) -> list[str]:
        """One temperature-0 chat completion per prompt, `concurrency` at a time."""

        async def one(prompt: str) -> str:
            response = await self.client.chat.completions.create(
                model=self.endpoint.model, messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=max_tokens
            )
            return response.choices[0].message.content or ""

        async def all_of() -> list[str]:
            return list(await asyncio.gather(*(self.gated(one(p)) for p in prompts)))

        return self.run(all_of())

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.client.close())
        finally:
            self.loop.close()

    def __enter__(self) -> "JudgeSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

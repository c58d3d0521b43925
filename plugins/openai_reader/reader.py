"""The `openai` reader: any OpenAI-compatible chat endpoint (ChatGPT, vLLM, Ollama, llama.cpp)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from rag_bench.api import (
    CACHE_HEADER, CircuitBreaker, EndpointDown, EndpointParams, Question, Reader, ReaderAnswer, async_client,
    clean_answer, describe_error, failure_kind, load_template, params_to_dict, preflight,
)


@dataclass(frozen=True)
class OpenAIReaderParams(EndpointParams):
    """Settings of the `openai` reader (`-R key=value`): the endpoint's, plus generation."""

    temperature: float = 0.0
    max_tokens: int = 32
    prompt_file: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")


class OpenAIReader(Reader):
    """Reads each question with one chat completion (temperature 0), `concurrency` at a time.

    The calls run on an event loop in a thread of the reader's own, and every batch submitted waits at the
    same gate: the next batch's calls start as this one's finish, with never more than `concurrency` in flight.
    """

    Params = OpenAIReaderParams
    description = "OpenAI-compatible chat endpoint (ChatGPT, vLLM, Ollama, llama.cpp server)"
    #: Settings that change how fast or how robustly answers come, not which answers.
    runtime_settings: ClassVar[tuple[str, ...]] = ("concurrency", "timeout_s", "max_retries", "cache", "check_model",
                                                   "price_input_per_1m", "price_output_per_1m")
    queues_reads: ClassVar[bool] = True

    def __init__(self, params: Any = None):
        super().__init__(params)
        p = self.params
        self.template = load_template(p.prompt_file)
        self.endpoint = p.endpoint()
        self._loop: asyncio.AbstractEventLoop | None = None  # running in `_thread` from the first submit
        self._thread: threading.Thread | None = None
        self._client: Any = None  # openai.AsyncOpenAI, bound to that loop
        self._gate: asyncio.Semaphore | None = None  # made in the loop: the bound on calls in flight
        self.breaker = CircuitBreaker(f"reader endpoint {self.endpoint.base_url}", None)

    def settings(self) -> dict[str, Any]:
        return {**params_to_dict(self.params), **self.endpoint.settings(), **self.template.manifest()}

    def limit_consecutive_failures(self, limit: int | None) -> None:
        self.breaker.limit = limit

    def preflight(self) -> None:
        preflight(self.endpoint, "reader", "-R", check_model=self.params.check_model)

    def read(self, questions: Sequence[Question], evidence: Sequence[Sequence[str]]) -> list[ReaderAnswer]:
        return self.submit(questions, evidence).result()

    def submit(self, questions: Sequence[Question], evidence: Sequence[Sequence[str]]) -> "Future[list[ReaderAnswer]]":
        if self._loop is None:
            # One loop for the reader's lifetime: the client's connection pool is bound to it.
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="rag-bench-reader", daemon=True)
            self._thread.start()
            self._client = async_client(self.endpoint, self.params.concurrency)
        return asyncio.run_coroutine_threadsafe(self._read_all(questions, evidence), self._loop)

    async def _read_all(self, questions: Sequence[Question], evidence: Sequence[Sequence[str]]) -> list[ReaderAnswer]:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.params.concurrency)  # first come, first served: batches in order
        return list(await asyncio.gather(*(self._read_one(self._gate, q, ev) for q, ev in zip(questions, evidence))))

    async def _read_one(self, gate: asyncio.Semaphore, question: Question, evidence: Sequence[str]) -> ReaderAnswer:
        import openai

        p = self.params
        messages = self.template.messages(question.text, evidence)
        async with gate:
            start = time.perf_counter()
            try:
                self.breaker.check()
                raw = await self._client.chat.completions.with_raw_response.create(
                    model=p.model, messages=messages, temperature=p.temperature, max_tokens=p.max_tokens
                )
                completion = raw.parse()
            except (openai.APIError, EndpointDown) as exc:  # still failing after the client's retries, or not sent
                if not isinstance(exc, EndpointDown):
                    self.breaker.failure(exc)
                latency = (time.perf_counter() - start) * 1000
                return ReaderAnswer(answer=None, error=describe_error(exc),
                                    info={"latency_ms": latency, "failure": failure_kind(exc)})
            self.breaker.success()
            latency = (time.perf_counter() - start) * 1000
        choice = completion.choices[0] if completion.choices else None
        text = choice.message.content if choice is not None else None
        info = {"latency_ms": latency, "raw_answer": text, "cached": raw.headers.get(CACHE_HEADER) == "hit",
                "finish_reason": choice.finish_reason if choice is not None else None, "served_model": completion.model}
        if text is None:
            return ReaderAnswer(answer=None, error="the endpoint returned no message content", info=info)
        return ReaderAnswer(answer=clean_answer(text), usage=self._usage(completion), info=info)

    def _usage(self, completion: Any) -> dict[str, Any]:
        return self.params.priced(completion.usage.model_dump()) if completion.usage is not None else {}

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            if self._client is not None:
                asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            self._loop, self._thread, self._client, self._gate = None, None, None, None

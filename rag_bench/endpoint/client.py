"""One OpenAI-compatible endpoint: its settings, a cached async client, and the preflight check.

Shared by the `openai` reader and the judges (plugins reach it through
`rag_bench.api`). Calls go through the official `openai` client, whose own
retry loop handles 408/409/429/5xx answers, connection errors and timeouts
with exponential backoff and jitter (and honours a server's
``Retry-After``/``retry-after-ms``). Below it,
`CachingTransport` answers any POST it has seen before from the disk cache
(`rag_bench.call_cache`), so a re-run makes no repeated call.

`openai` and `httpx` are imported when a client is made, not with this module,
so commands that call no endpoint start fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..errors import RagBenchError

from .faults import describe_error

if TYPE_CHECKING:
    import openai

OPENAI_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
#: Sent as the key to servers that need none (vLLM, Ollama, llama.cpp without --api-key).
NO_KEY = "no-key"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to call: resolved base URL, model, the env var holding the key, limits."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 4
    cache: bool = True

    @classmethod
    def resolve(cls, base_url: str | None, model: str, **kwargs: Any) -> "Endpoint":
        """`base_url` from the setting, else $OPENAI_BASE_URL, else OpenAI's API."""
        url = (base_url or os.environ.get(BASE_URL_ENV) or OPENAI_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise RagBenchError(f"base URL {url!r} is not an http(s) URL; pass e.g. --reader-base-url http://127.0.0.1:8000/v1")
        return cls(base_url=url, model=model, **kwargs)

    def api_key(self) -> str:
        """The key from the environment; only OpenAI's own API insists on one."""
        key = os.environ.get(self.api_key_env, "").strip()
        if key:
            return key
        if self.base_url == OPENAI_URL:
            raise RagBenchError(
                f"no API key for {self.base_url}: set {self.api_key_env}, or point --reader-base-url at a local "
                "OpenAI-compatible server (vLLM, Ollama, llama.cpp)"
            )
        return NO_KEY

    def settings(self) -> dict[str, Any]:
        """What a manifest records (never the key itself)."""
        return {"base_url": self.base_url, "model": self.model, "api_key_env": self.api_key_env}


@dataclass(frozen=True)
class EndpointParams:
    """The endpoint settings the `openai` reader (`-R`) and the judges (`-J`) share.

    `base_url` falls back to $OPENAI_BASE_URL, then OpenAI's API; the key is
    read from the environment variable named by `api_key_env`, never from a
    setting. `concurrency` bounds the calls in flight; `max_retries` and
    `timeout_s` drive the client's backoff on 429/5xx/timeouts; `cache` the
    disk cache of calls; `check_model` the preflight's model check. Prices
    (USD per 1M prompt / completion tokens) turn token usage into `cost_usd`.
    """

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 4
    cache: bool = True
    check_model: bool = True
    price_input_per_1m: float | None = None
    price_output_per_1m: float | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.max_retries < 0 or self.timeout_s <= 0:
            raise ValueError("max_retries must be >= 0 and timeout_s > 0")

    def endpoint(self) -> Endpoint:
        return Endpoint.resolve(self.base_url, self.model, api_key_env=self.api_key_env, timeout_s=self.timeout_s,
                                max_retries=self.max_retries, cache=self.cache)


    def priced(self, usage: dict[str, Any]) -> dict[str, Any]:
        """A completion's token counts, plus `cost_usd` when a price is set."""
        out = {key: usage[key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")
               if isinstance(usage.get(key), (int, float))}
        if out and (self.price_input_per_1m is not None or self.price_output_per_1m is not None):
            out["cost_usd"] = (out.get("prompt_tokens", 0) * (self.price_input_per_1m or 0.0)
                               + out.get("completion_tokens", 0) * (self.price_output_per_1m or 0.0)) / 1e6
        return out


def async_client(endpoint: Endpoint, concurrency: int = 16,
                 on_usage: Callable[[dict[str, Any]], None] | None = None) -> "openai.AsyncOpenAI":
    """An `AsyncOpenAI` for `endpoint`, with the disk cache in its transport when enabled.

    `on_usage` is called with the `usage` of every successful completion
    (cached ones included), in the task that made the call.
    """
    import json

    import httpx
    import openai

    from ..call_cache import CallCache

    from .transport import CachingTransport

    limits = httpx.Limits(max_connections=max(concurrency, 1) + 4, max_keepalive_connections=max(concurrency, 1))
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(limits=limits)
    if endpoint.cache:
        transport = CachingTransport(transport, CallCache())
    hooks: dict[str, list[Any]] = {}
    if on_usage is not None:
        async def report_usage(response: httpx.Response) -> None:
            if response.request.method == "POST" and response.status_code == 200:
                await response.aread()
                try:
                    usage = json.loads(response.content).get("usage")
                except (ValueError, AttributeError):
                    return
                if isinstance(usage, dict):
                    on_usage(usage)

        hooks["response"] = [report_usage]
    http = openai.DefaultAsyncHttpxClient(transport=transport, timeout=endpoint.timeout_s, event_hooks=hooks)
    return openai.AsyncOpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key(),
        timeout=endpoint.timeout_s,
        max_retries=endpoint.max_retries,
        http_client=http,
    )


def preflight(endpoint: Endpoint, who: str, flag: str, check_model: bool = True) -> None:
    """One cheap call (the models list) that turns a bad key, URL or model into one RagBenchError.

    `who` ("reader", "judge") and `flag` ("-R", "-J": where its settings go)
    shape the message. Servers without a models list get a one-token
    completion instead.
    """
    import openai

    client = openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key(), timeout=min(endpoint.timeout_s, 15.0), max_retries=1)
    where = f"{who} endpoint {endpoint.base_url}"
    try:
        try:
            served = [m.id for m in client.models.list()]
        except openai.NotFoundError:
            client.chat.completions.create(model=endpoint.model, messages=[{"role": "user", "content": "ping"}], max_tokens=1)
            return
        if check_model and endpoint.model not in served:
            shown = ", ".join(sorted(served)[:20]) or "none"
            raise RagBenchError(
                f"model {endpoint.model!r} is not served by the {where}; it serves: {shown}. "
                f"Pick one with {flag} model=NAME, or pass {flag} check_model=false if the server ignores model names"
            )
    except openai.AuthenticationError as exc:
        raise RagBenchError(f"the {where} rejected the API key from ${endpoint.api_key_env} ({describe_error(exc)}); set a valid key") from None
    except openai.NotFoundError as exc:
        raise RagBenchError(f"model {endpoint.model!r} is unknown to the {where} ({describe_error(exc)}); pick a served model") from None
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise RagBenchError(
            f"cannot reach the {where} ({describe_error(exc)}); start the server or fix the URL "
            f"({flag} base_url=URL or ${BASE_URL_ENV})"
        ) from None
    except openai.APIStatusError as exc:
        raise RagBenchError(f"the {where} failed the preflight check: {describe_error(exc)}") from None
    finally:
        client.close()

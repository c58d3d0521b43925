"""An httpx transport that answers repeated LLM calls from the disk cache (see `CachingTransport`)."""

from __future__ import annotations

import json

import httpx

from ..call_cache import CACHE_HEADER, CallCache, call_key

_DROP_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}


class CachingTransport(httpx.AsyncBaseTransport):
    """Answers a POST from the disk cache when its (URL, JSON body) was answered with 200 before.

    The key holds the full URL (endpoint and API path) and the request body
    (model, messages, every generation parameter); headers, and so the API
    key, are left out. Only successful answers are stored. Replies served
    from the cache carry the header ``x-rag-bench-cache: hit``.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, cache: CallCache):
        self.inner = inner
        self.cache = cache

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return await self.inner.handle_async_request(request)
        body = await request.aread()
        try:
            key = call_key({"url": str(request.url), "body": json.loads(body)})
        except ValueError:
            return await self.inner.handle_async_request(request)
        hit = self.cache.get(key)
        if hit is not None:
            headers = {"content-type": hit["content_type"], CACHE_HEADER: "hit"}
            return httpx.Response(200, headers=headers, content=hit["body"].encode("utf-8"), request=request)
        response = await self.inner.handle_async_request(request)
        if response.status_code != 200:
            return response
        content = await response.aread()
        await response.aclose()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _DROP_HEADERS]
        content_type = response.headers.get("content-type", "application/json")
        if content_type.startswith("application/json"):
            self.cache.put(key, {"content_type": content_type, "body": content.decode("utf-8")})
        return httpx.Response(200, headers=headers, content=content, request=request, extensions=response.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()

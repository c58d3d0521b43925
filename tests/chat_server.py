"""A real OpenAI-compatible HTTP server on loopback, for tests and benchmarks.

It implements ``GET /v1/models`` and ``POST /v1/chat/completions`` over
HTTP/1.1 on 127.0.0.1 with scripted answers, so clients are exercised
through their real network stack. Faults can be injected (an HTTP status such
as 429 or 500, a slow answer, limited to requests whose prompt contains a
string, for a number of requests or for ever); a wrong key gets 401 and an
unknown model 404, as OpenAI answers them. Every request is counted by path, and the most
chat requests in flight at once is kept (`max_in_flight`).

    with ChatServer(answers={"capital of France": "Paris"}) as server:
        server.add_fault(status=429, times=2)
        ... OpenAI(base_url=server.url, api_key=server.api_key) ...
        assert server.calls["/v1/chat/completions"] == 3
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Responder = Callable[[dict[str, Any]], str]


@dataclass
class Fault:
    """An injected misbehaviour: answer `status` (None: answer normally) after `delay_s`.

    It applies to requests whose prompt text contains `match` (or for which
    `match(text)` is true; any request when None), for `times` requests (None: for ever), once `after` matching
    requests have been answered normally. `drop` closes the connection
    without an answer, as a server that went away.
    """

    status: int | None = None
    delay_s: float = 0.0
    match: str | Callable[[str], bool] | None = None
    times: int | None = 1
    after: int = 0
    drop: bool = False


def prompt_text(body: dict[str, Any]) -> str:
    """All message contents of a chat request, joined."""
    parts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        parts.append(content or "")
    return "\n".join(parts)


class ChatServer:
    """The fixture server; use as a context manager or call `start()` / `stop()`."""

    def __init__(
        self,
        answers: dict[str, str] | None = None,
        responder: Responder | None = None,
        models: tuple[str, ...] = ("test-model",),
        api_key: str | None = "test-key",
        latency_s: float = 0.0,
        default_answer: str = "unknown",
    ):
        self.answers = dict(answers or {})
        self.responder = responder
        self.models = tuple(models)
        self.api_key = api_key
        self.latency_s = latency_s
        self.default_answer = default_answer
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        # The call cache keys replies on the URL: a server started on a port an earlier test's server had (bind
        # port 0 reuses ports within a session) must not be answered from that server's cached replies.
        self.prefix = f"/{uuid.uuid4().hex[:12]}"

    # -- control -------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL (it stays known after `stop()`, when its port refuses connections)."""
        assert self._port is not None, "server not started"
        return f"http://127.0.0.1:{self._port}{self.prefix}/v1"

    def add_fault(self, status: int | None = None, delay_s: float = 0.0, match: str | Callable[[str], bool] | None = None,
                  times: int | None = 1,
                  after: int = 0, drop: bool = False) -> Fault:
        fault = Fault(status=status, delay_s=delay_s, match=match, times=times, after=after, drop=drop)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()
            self.max_in_flight = 0

    @property
    def completions(self) -> int:
        """Chat-completion requests received so far (faulted ones included)."""
        return self.calls["/v1/chat/completions"]

    def start(self) -> "ChatServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="chat-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- behaviour -----------------------------------------------------------
    def _take_fault(self, text: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                matched = fault.match is None or (fault.match(text) if callable(fault.match) else fault.match in text)
                if fault.times != 0 and matched:
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def answer_for(self, body: dict[str, Any]) -> str:
        if self.responder is not None:
            return self.responder(body)
        text = prompt_text(body)
        for needle, answer in self.answers.items():
            if needle in text:
                return answer
        return self.default_answer


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops bursts of new connections (clients then wait ~1 s to retry SYN).
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment, without Nagle's delay.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    owner: ChatServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            self.close_connection = True

    def _error(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}, headers)

    def _authorised(self) -> bool:
        key = self.owner.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._error(401, "Incorrect API key provided.", "invalid_api_key")
        return False

    def _route(self) -> str:
        """The request's path after the server's prefix; a path outside it is named whole (no route serves it)."""
        path = self.path.split("?")[0]
        prefix = self.owner.prefix
        return path[len(prefix):] if path.startswith(prefix + "/") else f"(outside {prefix}) {path}"

    def do_GET(self) -> None:
        path = self._route()
        with self.owner._lock:
            self.owner.calls[path] += 1
        if not self._authorised():
            return
        if path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "chat-server"} for m in self.owner.models]
            self._send(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no route {path}", "not_found")

    def do_POST(self) -> None:
        path = self._route()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        owner = self.owner
        with owner._lock:
            owner.calls[path] += 1
            owner.requests.append(body)
        if not self._authorised():
            return
        if path != "/v1/chat/completions":
            self._error(404, f"no route {path}", "not_found")
            return
        model = body.get("model")
        if model not in owner.models:
            self._error(404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found")
            return
        with owner._lock:
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
        try:
            self._complete(body, model)
        finally:
            with owner._lock:
                owner.in_flight -= 1

    def _complete(self, body: dict[str, Any], model: str) -> None:
        owner = self.owner
        fault = owner._take_fault(prompt_text(body))
        delay = owner.latency_s + (fault.delay_s if fault else 0.0)
        if delay:
            time.sleep(delay)
        if fault is not None and fault.drop:
            self.close_connection = True  # no answer: the client sees the server disconnect
            return
        if fault is not None and fault.status is not None:
            # A short retry-after keeps clients' backoff (and so the tests) fast.
            self._error(fault.status, f"injected HTTP {fault.status}", "injected", {"retry-after-ms": "20"})
            return
        content = owner.answer_for(body)
        prompt_tokens = len(prompt_text(body).split())
        completion_tokens = len(content.split())
        self._send(200, {
            "id": f"chatcmpl-{owner.completions}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })


def reader_config(server: ChatServer, runs_dir: Any, provider: str = "bm25", limit: int = 6, **overrides: Any) -> Any:
    """A `RunConfig` that reads nq_5k through `server` with the `openai` reader (k = 1,3)."""
    from rag_bench.runner import RunConfig

    reader_params = {"model": server.models[0], "base_url": server.url, **overrides.pop("reader_params", {})}
    return RunConfig(provider=provider, task="nq_5k", limit=limit, ks=(1, 3), reader="openai",
                     reader_params=reader_params, runs_dir=runs_dir, **overrides)

"""What went wrong with a call, in one line and one short kind, and the breaker that stops calling a dead endpoint.

Shared by the `openai` reader and the judges. The kind ("timeout",
"connection error", "HTTP 500", ...) groups failures in the one-line-per-kind
terminal report; `describe_error` is the line kept with a failed record.
"""

from __future__ import annotations

from ..judging import ENDPOINT_DOWN


def describe_error(exc: BaseException) -> str:
    """One line for a failed call: the error class, HTTP status when there was one, the message."""
    status = getattr(exc, "status_code", None)
    message = " ".join(str(getattr(exc, "message", None) or exc).split())[:300]
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "") + f": {message}"


def api_failure(exc: BaseException) -> BaseException | None:
    """The `openai.APIError` behind `exc` (itself, or a cause such as instructor's retry wrapper), else None."""
    import openai

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, (openai.APIError, EndpointDown)):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def failure_kind(exc: BaseException) -> str:
    """A short kind for a failed call: timeout, connection error, HTTP <status>, endpoint down, or the class name."""
    import openai

    if isinstance(exc, EndpointDown):
        return ENDPOINT_DOWN
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__


class EndpointDown(Exception):
    """Raised instead of a call once the endpoint has failed too many calls in a row."""


class CircuitBreaker:
    """Counts failed calls in a row (each after the client's retries); at `limit` it opens for good.

    An open breaker makes `check` raise `EndpointDown` at once, so the calls
    still queued fail without waiting through their timeouts and retries.
    Any answered call (even one a judge cannot parse) resets the count.
    `limit` None or 0 never opens.
    """

    def __init__(self, where: str, limit: int | None):
        self.where = where
        self.limit = limit
        self.streak = 0
        self.last: str | None = None
        self.tripped = False

    @property
    def message(self) -> str:
        return (f"the {self.where} failed {self.streak} calls in a row (last: {self.last}); check that it is up, "
                "then run the same command again to resume (--max-consecutive-failures sets the limit)")

    def check(self) -> None:
        if self.tripped:
            raise EndpointDown(self.message)

    def failure(self, exc: BaseException) -> None:
        self.streak += 1
        self.last = describe_error(exc)
        if self.limit and self.streak >= self.limit:
            self.tripped = True

    def success(self) -> None:
        if not self.tripped:
            self.streak = 0

"""Work on the next item while the caller handles this one: the runner provides batch n+1 while batch n is read.

A remote reader spends a batch waiting on the network; computing the next
batch's evidence in that time takes the provider off the run's critical path
(`benchmarks/reader.py` measures both ways). The items are computed in order on
one daemon thread, so a provider sees one caller, as before, and the results
come back in order, so records are written as before.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Generic, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


class Lookahead(Generic[T, R]):
    """``fn(item)`` for each item in order, up to `ahead` items before the consumer takes them.

    Iterate (inside ``with``) to get ``(item, result, seconds)`` in item order,
    where `seconds` is the wall time of that one call. With ``ahead=1``, item
    n+1 is computed while the consumer handles item n; ``ahead=0`` computes
    each item in the consumer's thread when it is asked for (no thread). An
    exception of `fn` is raised where its item would have been yielded, and no
    later item is computed. Leaving the ``with`` block, normally or not, stops
    the lookahead and waits for a call in progress to end, so the caller may
    then release what `fn` uses (close the provider).
    """

    def __init__(self, fn: Callable[[T], R], items: Sequence[T], ahead: int = 1, name: str = "lookahead"):
        if ahead < 0:
            raise ValueError("ahead must be >= 0")
        self._fn, self._items, self._ahead = fn, list(items), ahead
        self._results: queue.Queue = queue.Queue()
        self._credits = threading.Semaphore(ahead)
        #: Set once `close` has begun: no call starts after it.
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True) if ahead else None

    def __enter__(self) -> "Lookahead[T, R]":
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Start no further call and wait for the one in progress (if any)."""
        self.stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._credits.release()  # wakes a worker waiting for credit; it sees the stop and ends
            self._thread.join()

    def _call(self, item: T) -> tuple[T, R | None, float, BaseException | None]:
        start = time.perf_counter()
        try:
            result = self._fn(item)
        except BaseException as exc:  # handed to the consumer, raised there
            return item, None, time.perf_counter() - start, exc
        return item, result, time.perf_counter() - start, None

    def _work(self) -> None:
        for item in self._items:
            self._credits.acquire()
            if self.stopping.is_set():
                break
            outcome = self._call(item)
            self._results.put(outcome)
            if outcome[3] is not None:
                break
        self._results.put(_DONE)

    def __iter__(self) -> Iterator[tuple[T, R, float]]:
        for item in self._items:
            if self._thread is None:
                outcome = self._call(item)
            else:
                outcome = self._results.get()
                if outcome is _DONE:
                    return
                self._credits.release()  # the consumer has this one: the worker may start the next
            item, result, seconds, error = outcome
            if error is not None:
                raise error
            yield item, result, seconds

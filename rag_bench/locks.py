"""Advisory file locks, so two processes never write one run folder or build one provider state at once."""

from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path
from typing import Iterator

from .errors import RagBenchError


@contextlib.contextmanager
def exclusive(path: Path, busy: str, wait: bool) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block.

    When another process holds it: with `wait`, say `busy` on stderr and wait
    for it; without, raise RagBenchError(`busy`). The lock goes with the
    process, so a killed holder never leaves a stale lock behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise RagBenchError(busy) from None
            print(f"rag-bench: {busy}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

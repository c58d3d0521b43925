"""Quiet, complete diagnostics: full failure details in the run's errors.log, one line per failure kind on the terminal."""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from .manifest import now

#: Libraries whose log records (instructor's retry dumps, LiteLLM, httpx) go to the log file while judges run.
LIBRARY_LOGGERS = ("instructor", "ragas", "refchecker", "ragchecker", "litellm", "LiteLLM", "httpx", "openai")


@dataclass
class Failure:
    """Why one metric of one question has no value: a short `kind`, a one-line `reason`, the full `detail` for the log."""

    kind: str
    reason: str
    detail: str = ""

    @classmethod
    def from_exception(cls, kind: str, exc: BaseException, reason: str | None = None) -> "Failure":
        line = reason or " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return cls(kind, line, "".join(traceback.format_exception(exc)))



class FailureLog:
    """Appends failure details to `path` (created on the first write)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, source: str, qid: str, metric: str, failure: Failure) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{now()} {source} {qid} {metric}: [{failure.kind}] {failure.reason}\n")
            if failure.detail:
                fh.write(failure.detail.rstrip("\n") + "\n")

    def write_records(self, records: Sequence[dict[str, Any]]) -> None:
        """The error of each failed reader record."""
        failed = [r for r in records if r.get("status") == "failed"]
        if not failed:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            for record in failed:
                fh.write(f"{now()} reader {record['qid']}: [{reader_failure_kind(record)}] {record.get('reader_error')}\n")

    @contextlib.contextmanager
    def capture_libraries(self, names: Sequence[str] = LIBRARY_LOGGERS) -> Iterator[None]:
        """Send the named loggers' records to the log file (not the terminal) inside the block."""
        handler = logging.FileHandler(self.path, encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        saved = []
        for name in names:
            logger = logging.getLogger(name)
            saved.append((logger, logger.propagate, logger.level))
            logger.addHandler(handler)
            logger.propagate = False
            if logger.level == logging.NOTSET or logger.level > logging.WARNING:
                logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, propagate, level in saved:
                logger.removeHandler(handler)
                logger.propagate, logger.level = propagate, level
            handler.close()


def reader_failure_kind(record: dict[str, Any]) -> str:
    """A failed record's kind: the reader's own (`reader_info.failure`), else the error's class."""
    kind = (record.get("reader_info") or {}).get("failure")
    return kind or str(record.get("reader_error") or "error").split(":", 1)[0]


def failure_lines(metrics: dict[str, Any], log_path: Path | None = None) -> list[str]:
    """One terminal line per (source, failure kind) with its count, from metrics.json's `failures` and `judges`."""
    where = f" (details: {log_path})" if log_path is not None else ""
    lines = [f"reader: {count} question{'s' * (count != 1)} failed: {kind}{where}"
             for kind, count in sorted((metrics.get("failures") or {}).items())]
    for judge, info in sorted((metrics.get("judges") or {}).items()):
        if info.get("note"):
            lines.append(f"{judge}: {info['note']}")
        for kind, count in sorted(info.get("unscored_by_kind", {}).items()):
            lines.append(f"{judge}: {count} question{'s' * (count != 1)} unscored: {kind}{where}")
    return lines


def count_kinds(kinds: Sequence[str]) -> dict[str, int]:
    return dict(sorted(Counter(kinds).items()))

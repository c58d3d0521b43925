"""JSON Lines and checksum helpers with errors that name file and line."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from .errors import RagBenchError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """Whether `path` holds gzip data (by its first bytes, not its name)."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_text(path: Path) -> IO[str]:
    """Open a text file that may be gzip-compressed (detected by content, not name)."""
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


def open_bytes(path: Path) -> IO[bytes]:
    """Open a file that may be gzip-compressed (detected by content, not name) for its decompressed bytes."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


TORN_TAIL = ("error", "skip")


def read_jsonl(path: Path, required: Iterable[str] = (), *, torn_tail: str = "error",
               bad_line: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield one object per non-empty line (gzip'd or not); a bad line raises naming `path:line`. Never modifies
    the file.

    Lines end at ``\\n`` (JSON Lines; a ``\\r`` before it is whitespace).
    `torn_tail` says what a last line without its newline is. ``"error"``: an
    ordinary line (a file written by hand may end so), read and checked like
    the others. ``"skip"``: the tail of an append that never finished (an
    append-only file of a killed process), left out whether it parses or
    not; `repair_torn_tail` cuts exactly that line off before appending again.

    `bad_line`, where given, is the message for every bad line (after
    ``path:line: ``), with ``{error}`` standing for what is wrong with it
    (e.g. ``malformed JSON (Expecting value)``); by default the message is
    that problem, followed by a fix for malformed JSON.
    """
    if torn_tail not in TORN_TAIL:
        raise ValueError(f"torn_tail={torn_tail!r}: expected one of {', '.join(TORN_TAIL)}")
    required = tuple(required)

    def bad(number: int, error: str, fix: str = "") -> RagBenchError:
        return RagBenchError(f"{path}:{number}: " + (bad_line.format(error=error) if bad_line else error + fix))

    with open_bytes(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if torn_tail == "skip" and not raw.endswith(b"\n"):
                continue  # (only the last line can lack its newline)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise bad(number, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise bad(number, f"malformed JSON ({exc.msg})", "; fix or remove that line") from None
            if not isinstance(row, dict):
                raise bad(number, f"expected a JSON object, got {type(row).__name__}")
            missing = [name for name in required if name not in row]
            if missing:
                raise bad(number, f"missing required field(s) {', '.join(missing)}")
            yield row


def repair_torn_tail(path: Path) -> bool:
    """Cut off a last line without its newline (an append a crash interrupted), so the next append starts a line
    of its own; True when something was cut. Call it only before appending to `path` again: readers skip that
    line (``read_jsonl(..., torn_tail="skip")``) and leave the file as it is."""
    if not path.is_file():
        return False
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return False
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return False
        end = size - 1
        while end > 0:  # back to the newline that ends the last whole line
            start = max(0, end - (1 << 16))
            fh.seek(start)
            newline = fh.read(end - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        fh.truncate(end)
    return True


def dumps(row: Any) -> str:
    """The one canonical JSON encoding used in every file rag-bench writes (stable bytes)."""
    return json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text through a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write pretty JSON atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return _sha256(fh)


def sha256_content(path: Path) -> str:
    """sha256 of the decompressed bytes of a gzip file (of the bytes themselves otherwise)."""
    with open_bytes(path) as fh:
        return _sha256(fh)


def _sha256(fh: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(value: Any, length: int = 16) -> str:
    """A short sha256 of `value` in the canonical JSON encoding: a cache or configuration key."""
    return sha256_text(dumps(value))[:length]

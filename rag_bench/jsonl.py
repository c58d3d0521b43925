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


def open_text(path: Path) -> IO[str]:
    """Open a text file that may be gzip-compressed (detected by content, not name)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


def read_jsonl(path: Path, required: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """Yield one object per non-empty line; a bad line raises naming `path:line`."""
    required = tuple(required)
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RagBenchError(f"{path}:{number}: malformed JSON ({exc.msg}); fix or remove that line") from None
            if not isinstance(row, dict):
                raise RagBenchError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            missing = [name for name in required if name not in row]
            if missing:
                raise RagBenchError(f"{path}:{number}: missing required field(s) {', '.join(missing)}")
            yield row


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
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_content(path: Path) -> str:
    """sha256 of the decompressed bytes of a gzip file (of the bytes themselves otherwise)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        compressed = fh.read(2) == GZIP_MAGIC
    opener = gzip.open if compressed else open
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(value: Any, length: int = 16) -> str:
    """A short sha256 of `value` in the canonical JSON encoding: a cache or configuration key."""
    return sha256_text(dumps(value))[:length]

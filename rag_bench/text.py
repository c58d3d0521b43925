"""Text helpers shared by providers: what a passage's index document and reader evidence are, and the
equal-bytes cut of that evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .types import Passage


def document_text(passage: Passage) -> str:
    """What a retriever indexes for a passage: title and text (the text alone when there is no title)."""
    return f"{passage.title}\n{passage.text}" if passage.title else passage.text


def passage_evidence(passage: Passage) -> str:
    """What the reader sees for a retrieved passage: the same title and text as `document_text`."""
    return document_text(passage)


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` (an index's size on disk)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def utf8_prefix(text: str, max_bytes: int) -> str:
    """The longest start of `text` whose UTF-8 encoding fits in `max_bytes`, ending at a word boundary where one exists.

    The cut never splits a character (a multi-byte character that does not fit
    is dropped whole). When the cut falls inside a word, it moves back to the
    last whitespace before it; a text whose first word alone is longer than
    `max_bytes` is cut at the last whole character instead. Trailing whitespace
    is dropped. A text that fits is returned unchanged.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    # A truncated multi-byte sequence can only sit at the end; "ignore" drops exactly it.
    cut = encoded[:max_bytes].decode("utf-8", errors="ignore")
    if not text[len(cut)].isspace():  # the cut splits a word: back to the last whitespace, if any
        end = len(cut)
        while end > 0 and not cut[end - 1].isspace():
            end -= 1
        if cut[:end].strip():
            cut = cut[:end]
    return cut.rstrip()


def check_evidence_bytes(value: int | None) -> None:
    """A provider's `evidence_bytes` setting: None (whole passages) or a positive number of bytes."""
    if value is not None and value < 1:
        raise ValueError(f"evidence_bytes must be a positive number of bytes (or none), got {value}")


def utf8_size(texts: Iterable[str]) -> int:
    """Bytes of `texts` in UTF-8: what a text store of them holds."""
    return sum(len(text.encode("utf-8")) for text in texts)


def evidence_store(texts: Iterable[str], max_bytes: int | None) -> list[str]:
    """The texts a provider stores and hands over: each cut by `utf8_prefix` to `max_bytes` (None: whole)."""
    return list(texts) if max_bytes is None else [utf8_prefix(text, max_bytes) for text in texts]

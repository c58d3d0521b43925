"""How passages become index documents and reader evidence."""

from __future__ import annotations

from pathlib import Path

from rag_bench.types import Passage


def document_text(passage: Passage) -> str:
    """What gets indexed: title and text."""
    return f"{passage.title}\n{passage.text}" if passage.title else passage.text


def passage_evidence(passage: Passage) -> str:
    """What the reader sees for a retrieved passage."""
    return document_text(passage)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

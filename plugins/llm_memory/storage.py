"""What a memory stores beside the text it stands for (torch-free: the run's metrics read it for every run).

A memory's z_i is `m_tokens` x `z_dim` numbers per passage, stored in `z_storage` (fp32 or fp16); the text it
replaces is the passage's UTF-8 title and text. Their ratio above 1 means the memory is larger than simply storing
the passage.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rag_bench.api import Passage

from .config import Z_BYTES


def passage_text(passage: Passage) -> str:
    """The text a memory is trained on and stands for: title, newline, text (the text alone when untitled)."""
    return f"{passage.title}\n{passage.text}" if passage.title else passage.text


def z_bytes_per_passage(settings: Mapping[str, Any]) -> int:
    """Bytes of one z_i as stored, from a memory's settings (its card's, or the live params' as a dict)."""
    return int(settings["m_tokens"]) * int(settings["z_dim"]) * Z_BYTES[settings.get("z_storage", "fp32")]


def storage_ratio(z_bytes: int, passages: Sequence[Passage]) -> dict:
    """Z's bytes per passage beside the mean bytes of the passages' text, and their ratio."""
    text_bytes = sum(len(passage_text(p).encode("utf-8")) for p in passages) / max(1, len(passages))
    return {"z_bytes_per_passage": z_bytes, "text_bytes_per_passage": round(text_bytes, 1),
            "z_to_text_bytes": round(z_bytes / text_bytes, 3) if text_bytes else None}

"""Text helpers shared by the task builders: sentence splitting and gold evidence."""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Sequence

from rag_bench.scoring.retrieval import has_answer

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])")


def split_sentences(text: str) -> list[str]:
    """Split on sentence-final punctuation followed by a capital, digit or opening quote."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def gold_evidence(passage_text: str, answers: Iterable[str]) -> tuple[str, ...]:
    """The sentences that contain an answer (DPR's has_answer), else the whole passage."""
    answers = list(answers)
    hits = tuple(s for s in split_sentences(passage_text) if has_answer(s, answers))
    return hits or (passage_text.strip(),)


def rank_key(salt: str, *parts: str) -> str:
    """A deterministic pseudo-random order: sha256 over a salt and the item's text."""
    return hashlib.sha256("\n".join((salt, *parts)).encode("utf-8")).hexdigest()


def assign_splits(keys: Sequence[str], ratios: dict[str, float], salt: str) -> dict[str, str]:
    """Map each key to a split: keys ranked by hash, cut in the card's order by its ratios."""
    ranked = sorted(keys, key=lambda key: rank_key(salt, key))
    names = list(ratios)
    out: dict[str, str] = {}
    start = 0
    for position, name in enumerate(names):
        stop = len(ranked) if position == len(names) - 1 else start + int(len(ranked) * ratios[name])
        for key in ranked[start:stop]:
            out[key] = name
        start = stop
    return out

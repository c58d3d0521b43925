"""Gold evidence from gold passages: the sentences that contain an answer."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from .scoring.retrieval import has_answer

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])")


def split_sentences(text: str) -> list[str]:
    """Split on sentence-final punctuation followed by a capital, digit or opening quote."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def gold_evidence(passages: Sequence[str], answers: Iterable[str]) -> tuple[str, ...]:
    """The sentences of `passages` that contain an answer (DPR's has_answer), else the whole passages."""
    answers = list(answers)
    hits = tuple(s for text in passages for s in split_sentences(text) if has_answer(s, answers))
    return hits or tuple(text.strip() for text in passages)

"""Answer scoring with SQuAD normalisation (the official SQuAD v1.1 evaluation rules)."""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation and the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: Iterable[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in gold))


def answer_match(prediction: str, gold: Iterable[str]) -> float:
    """1.0 when some normalised gold answer occurs in the normalised prediction as a whole-token sequence.

    BERGEN's lenient `match`, for readers that answer in sentences ("It was
    written by William Shakespeare" matches "Shakespeare"); an empty gold
    answer never matches.
    """
    pred = normalize_answer(prediction).split()
    for answer in gold:
        needle = normalize_answer(answer).split()
        if needle and any(pred[i : i + len(needle)] == needle for i in range(len(pred) - len(needle) + 1)):
            return 1.0
    return 0.0


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, gold: Iterable[str]) -> float:
    """Token F1 against the best-matching gold answer."""
    return max((_f1(prediction, g) for g in gold), default=0.0)

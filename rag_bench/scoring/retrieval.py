"""Ranking metrics over doc ids (binary relevance), and DPR's answer-in-passage test."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Iterable, Sequence

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """Share of the gold passages found in the top k (retrieval recall, not token recall)."""
    return len(gold.intersection(ranked[:k])) / len(gold)


def hit_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """1.0 when any gold passage is in the top k."""
    return float(any(doc in gold for doc in ranked[:k]))


def all_gold_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """1.0 when every gold passage is in the top k (multi-hop: all hops found)."""
    return float(gold.issubset(ranked[:k]))


def mrr_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """Reciprocal rank of the first gold passage within the top k, else 0."""
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """nDCG@k with binary gains and log2 discounts (as trec_eval's ndcg_cut)."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1) if doc in gold)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFD", text).lower())


def has_answer(text: str, answers: Iterable[str]) -> bool:
    """DPR's test: some answer occurs in `text` as a whole token sequence (case-insensitive)."""
    tokens = _tokens(text)
    for answer in answers:
        needle = _tokens(answer)
        if not needle:
            continue
        width = len(needle)
        if any(tokens[i : i + width] == needle for i in range(len(tokens) - width + 1)):
            return True
    return False

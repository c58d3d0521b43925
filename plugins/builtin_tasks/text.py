"""Deterministic orderings shared by the task builders (gold evidence lives in rag_bench.gold_evidence)."""

from __future__ import annotations

import hashlib
from typing import Sequence

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

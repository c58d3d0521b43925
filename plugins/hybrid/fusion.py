"""Reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009)."""

from __future__ import annotations

from typing import Sequence

#: The constant k of RRF, score(d) = sum over rankings of 1 / (k + rank(d)), ranks from 1.
#: 60 is the value of the original paper, also Anserini's and Elasticsearch's default;
#: it damps the weight of the very first ranks so that agreement between rankers wins.
RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse rankings of item ids into one (id, fused score) list, best first.

    Ties are broken by the best single rank the item reached, then by id, so
    the result is deterministic.
    """
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]], pair[0]))

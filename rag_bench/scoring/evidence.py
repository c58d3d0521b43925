"""Evidence text similarity (ROUGE-L through Google's rouge-score)."""

from __future__ import annotations

from functools import lru_cache

from rouge_score import rouge_scorer


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of `prediction` against `reference` (Porter-stemmed tokens)."""
    if not prediction.strip() or not reference.strip():
        return 0.0
    return _scorer().score(reference, prediction)["rougeL"].fmeasure

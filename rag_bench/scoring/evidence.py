"""Evidence text similarity: ROUGE-L F1 as Google's rouge-score computes it, faster.

Tokens come from rouge-score's own stemming tokenizer (memoised: the same gold
evidence and passages are scored many times per run). The longest common
subsequence is computed with a bit-parallel algorithm (Hyyrö 2004) instead of
rouge-score's pure-Python dynamic-programming table, which dominated the time
of a whole bm25 run; a test checks the scores equal rouge-score's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence



@lru_cache(maxsize=1)
def _tokenizer():
    # rouge-score pulls in nltk (seconds to import): load it on first use, not with the CLI.
    from rouge_score import tokenizers

    return tokenizers.DefaultTokenizer(use_stemmer=True)


@lru_cache(maxsize=1 << 16)
def rouge_tokens(text: str) -> tuple[str, ...]:
    """rouge-score's tokens: lower-cased alphanumeric words, Porter-stemmed."""
    return tuple(_tokenizer().tokenize(text))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences (bit-vector LCS)."""
    if len(a) < len(b):
        a, b = b, a  # the bit vector runs over the shorter sequence
    masks: dict[str, int] = {}
    for position, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << position)
    full = (1 << len(b)) - 1
    row = full
    for token in a:
        match = row & masks.get(token, 0)
        row = ((row + match) | (row - match)) & full
    return len(b) - bin(row).count("1")


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of `prediction` against `reference` (Porter-stemmed tokens)."""
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    if not pred or not ref:
        return 0.0
    common = lcs_length(pred, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)

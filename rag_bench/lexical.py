"""BM25 with bm25s as the harness tokenises it: the tokenizer and defaults the `bm25` provider builds on, and a
one-call BM25 ranking of passages for any plugin that needs lexical neighbours (llm_memory's hard negatives).

Tokenisation: lower-cased, split on ``\\b\\w\\w+\\b``, English stopwords removed
(bm25s's list, the same 33 words as Lucene's), Snowball English stemming
(PyStemmer). Scoring: Lucene's BM25 variant with Anserini's k1=0.9, b=0.4.
`bm25s` and `Stemmer` are imported when a tokenizer is made, not with this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .text import document_text
from .types import Passage

if TYPE_CHECKING:
    from bm25s.tokenization import Tokenizer

#: Anserini's BM25 defaults, also the `bm25` provider's (`-P k1=`, `-P b=`).
BM25_K1 = 0.9
BM25_B = 0.4
#: PyStemmer's algorithm and bm25s's stopword list the `bm25` provider uses by default.
BM25_STEMMER = "english"
BM25_STOPWORDS = "en"


def bm25_tokenizer(stemmer: str | None = BM25_STEMMER, stopwords: str | None = BM25_STOPWORDS) -> "Tokenizer":
    """A bm25s `Tokenizer` (lower-cased; `stopwords` a bm25s list name, `stemmer` a PyStemmer algorithm; empty or
    None: none)."""
    import Stemmer
    from bm25s.tokenization import Tokenizer

    return Tokenizer(lower=True, stopwords=stopwords or None, stemmer=Stemmer.Stemmer(stemmer) if stemmer else None)


def bm25_neighbours(passages: Sequence[Passage], queries: Sequence[str], k: int) -> list[list[int]]:
    """The top-k passage positions (best first) for each query under BM25 over `passages` (`document_text`), with
    the `bm25` provider's default tokenisation and k1, b; built in memory, nothing written. `k` is capped at the
    number of passages."""
    import bm25s

    tokenizer = bm25_tokenizer()
    corpus_ids = tokenizer.tokenize([document_text(p) for p in passages], update_vocab=True, return_as="tuple",
                                    show_progress=False)
    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
    retriever.index(corpus_ids, show_progress=False)
    query_ids = tokenizer.tokenize(list(queries), update_vocab=False, return_as="tuple", show_progress=False)
    docs, _ = retriever.retrieve(query_ids, k=min(k, len(passages)), show_progress=False)
    return [[int(d) for d in row] for row in docs]

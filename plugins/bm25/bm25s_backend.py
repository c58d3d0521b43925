"""BM25 with bm25s: sparse matrix scoring in NumPy."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np
from bm25s.tokenization import Tokenizer

from rag_bench.api import Passage, bm25_tokenizer, document_text, folder_bytes, write_json_atomic

DONE = "done.json"


def make_tokenizer(params) -> Tokenizer:
    """The tokenizer of `params`'s stemmer and stopwords (`rag_bench.api.bm25_tokenizer`)."""
    return bm25_tokenizer(params.stemmer, params.stopwords)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a (queries, documents) score matrix, the k best positions and scores, best first.

    Row by row the same operations as bm25s's NumPy top-k (`bm25s.selection`,
    sorted): `argpartition` for the last k, `argsort` of those, reversed; so
    ties are broken the same way and the results are identical.
    """
    part = np.argpartition(scores, -k, axis=1)[:, -k:]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.flip(np.argsort(part_scores, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


class Bm25sIndex:
    """A bm25s index and the tokenizer whose vocabulary it was built with."""

    def __init__(self, retriever: bm25s.BM25, tokenizer: Tokenizer, folder: Path, params):
        self.retriever = retriever
        self.tokenizer = tokenizer
        self.folder = folder
        self.params = params

    @classmethod
    def build_or_load(cls, corpus: Sequence[Passage], folder: Path, params) -> "Bm25sIndex":
        tokenizer = make_tokenizer(params)
        if (folder / DONE).is_file():
            tokenizer.load_vocab(str(folder))
            retriever = bm25s.BM25.load(str(folder), show_progress=False)
            return cls(retriever, tokenizer, folder, params)
        folder.mkdir(parents=True, exist_ok=True)
        ids = tokenizer.tokenize([document_text(p) for p in corpus], update_vocab=True, return_as="tuple", show_progress=True)
        retriever = bm25s.BM25(k1=params.k1, b=params.b, method="lucene")
        retriever.index(ids, show_progress=True)
        retriever.save(str(folder), show_progress=False)
        tokenizer.save_vocab(str(folder))
        write_json_atomic(folder / DONE, {"documents": len(corpus)})
        return cls(retriever, tokenizer, folder, params)

    def rank(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k corpus positions and their scores: two (queries, k) arrays, exactly what `retrieve_rank` returns.

        bm25s scores each query (`BM25.get_scores`), and the top k of the whole
        batch are taken with one `argpartition` and one `argsort` over its
        (queries, corpus) score matrix: the same NumPy kernels, row by row, that
        `BM25.retrieve` calls once per query, without its per-query Python
        (2-3% of query time on nq_5k; benchmarks/bm25.py, docs/benchmarks/bm25.md).
        """
        ids = self._query_ids(queries)
        k = min(k, self.retriever.scores["num_docs"])
        known = self.retriever.unique_token_ids_set
        filtered = [[t for t in query if t in known] for query in ids]
        if self.params.threads > 1 or not all(filtered):  # threads, or a query without a known token: bm25s's path
            return self._retrieve(ids, k)
        scores = np.stack([self.retriever.get_scores(query) for query in filtered])
        return top_k(scores, k)

    def retrieve_rank(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """`rank` through `BM25.retrieve` (one top-k per query): the reference `rank` must equal."""
        return self._retrieve(self._query_ids(queries), min(k, self.retriever.scores["num_docs"]))

    def _query_ids(self, queries: list[str]) -> list[list[int]]:
        # Token ids, not bm25s's Tokenized tuple: retrieve() would rebuild the reverse vocabulary on every call.
        return self.tokenizer.tokenize(queries, update_vocab=False, return_as="ids", show_progress=False)

    def _retrieve(self, ids: list[list[int]], k: int) -> tuple[np.ndarray, np.ndarray]:
        workers = self.params.threads if self.params.threads > 1 else 0
        # NumPy top-k always (bm25s would pick JAX where installed): the same ties as `top_k`, and as published.
        return self.retriever.retrieve(ids, k=k, show_progress=False, n_threads=workers, backend_selection="numpy")

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        docs, scores = self.rank(queries, k)
        return [list(zip(*row)) for row in zip(docs.tolist(), scores.tolist())]

    def size_bytes(self) -> int:
        return folder_bytes(self.folder)

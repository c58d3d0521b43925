"""BM25 with bm25s: sparse matrix scoring in NumPy."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenizer

from rag_bench.jsonl import write_json_atomic
from rag_bench.types import Passage

from .text import document_text, folder_bytes

DONE = "done.json"


def make_tokenizer(params) -> Tokenizer:
    stemmer = Stemmer.Stemmer(params.stemmer) if params.stemmer else None
    return Tokenizer(lower=True, stopwords=params.stopwords or None, stemmer=stemmer)


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
        """Top-k corpus positions and their scores: two (queries, k) arrays."""
        # Token ids, not bm25s's Tokenized tuple: retrieve() would rebuild the reverse vocabulary on every call.
        ids = self.tokenizer.tokenize(queries, update_vocab=False, return_as="ids", show_progress=False)
        k = min(k, self.retriever.scores["num_docs"])
        workers = self.params.threads if self.params.threads > 1 else 0
        return self.retriever.retrieve(ids, k=k, show_progress=False, n_threads=workers)

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        docs, scores = self.rank(queries, k)
        return [list(zip(*row)) for row in zip(docs.tolist(), scores.tolist())]

    def size_bytes(self) -> int:
        return folder_bytes(self.folder)

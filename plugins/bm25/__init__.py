"""The `bm25` provider: lexical retrieval with bm25s (default) or Lucene through pyserini.

Tokenisation (bm25s backend): lower-cased, split on the regex ``\\b\\w\\w+\\b``
(words of two or more word characters, Unicode-aware), English stopwords
removed (bm25s's list), Snowball English stemming (PyStemmer). Title and text
are indexed together. Scoring is Lucene's BM25 variant with k1=0.9, b=0.4 by
default, Anserini's defaults, so both backends rank with the same formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rag_bench import hookimpl
from rag_bench.errors import RagBenchError
from rag_bench.provider import EvidenceProvider
from rag_bench.types import Hit, ProvidedEvidence, Question

from .text import document_text, passage_evidence


@dataclass(frozen=True)
class BM25Params:
    """Settings of the bm25 provider (``-P key=value``)."""

    backend: str = "bm25s"
    k1: float = 0.9
    b: float = 0.4
    stemmer: str = "english"
    stopwords: str = "en"
    threads: int = 1

    def __post_init__(self):
        if self.backend not in ("bm25s", "pyserini"):
            raise ValueError(f"backend must be bm25s or pyserini, got {self.backend!r}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError("k1 must be >= 0 and b within [0, 1]")


class BM25Provider(EvidenceProvider):
    """BM25 over title + text; evidence = the retrieved passages."""

    Params = BM25Params
    description = "BM25 (bm25s; -P backend=pyserini for Lucene)"
    version = "1"

    def prepare(self, task, workdir: Path) -> None:
        self.task = task
        self.passages = task.corpus
        if self.params.backend == "pyserini":
            from .pyserini_backend import PyseriniIndex

            self.index = PyseriniIndex.build_or_load(task.corpus, workdir / "lucene", self.params)
        else:
            from .bm25s_backend import Bm25sIndex

            self.index = Bm25sIndex.build_or_load(task.corpus, workdir / "bm25s", self.params)
        self.workdir = workdir

    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-k (corpus position, score) per query; used by other providers (hybrid) too."""
        if not hasattr(self, "index"):
            raise RagBenchError("bm25: prepare() must run before search()")
        return self.index.search(list(queries), k)

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        results = self.search([q.text for q in questions], k)
        out = []
        for ranked in results:
            hits = [Hit(self.passages[i].doc_id, score) for i, score in ranked]
            out.append(ProvidedEvidence(hits=hits, evidence=[passage_evidence(self.passages[i]) for i, _ in ranked]))
        return out

    def footprint(self) -> dict[str, int]:
        return {
            "index": self.index.size_bytes(),
            "text_store": sum(len(document_text(p).encode("utf-8")) for p in self.passages),
        }

    def close(self) -> None:
        index = getattr(self, "index", None)
        if index is not None and hasattr(index, "close"):
            index.close()


@hookimpl
def register_providers(register):
    register("bm25", BM25Provider)

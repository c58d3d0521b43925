"""The `bm25` provider: lexical retrieval with bm25s (default) or Lucene through pyserini.

Tokenisation (bm25s backend): lower-cased, split on the regex ``\\b\\w\\w+\\b``
(words of two or more word characters, Unicode-aware), English stopwords
removed (bm25s's list, the same 33 words as Lucene's), Snowball English
stemming (PyStemmer). The pyserini backend uses Lucene's English analyzer
(StandardTokenizer, the same stopwords, Porter stemming). Title and text are
indexed together. Scoring is Lucene's BM25 variant with k1=0.9, b=0.4 by
default, Anserini's defaults, so both backends rank with the same formula.

Writing new passages (`write`, ``rag-bench write-curve``) rebuilds the index
over the old and the new passages in a temporary folder: BM25's document
frequencies and average length are corpus statistics, so a new passage
changes every score, and bm25s has no incremental insert. The cost reported
is that rebuild; the prepared index in the cache is left as it was.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rag_bench.api import (
    Passage, PassageStore, ProvidedEvidence, Question, RagBenchError, Retriever, WriteCost, check_evidence_bytes,
    hookimpl,
)


@dataclass(frozen=True)
class BM25Params:
    """Settings of the bm25 provider (``-P key=value``).

    `evidence_bytes` (None: whole passages) stores and hands over only the
    first that many UTF-8 bytes of each passage's evidence text, cut at a word
    boundary (`rag_bench.api.utf8_prefix`); the index still holds whole passages.
    """

    backend: str = "bm25s"
    k1: float = 0.9
    b: float = 0.4
    stemmer: str = "english"
    stopwords: str = "en"
    threads: int = 1
    evidence_bytes: int | None = None

    def __post_init__(self):
        if self.backend not in ("bm25s", "pyserini"):
            raise ValueError(f"backend must be bm25s or pyserini, got {self.backend!r}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError("k1 must be >= 0 and b within [0, 1]")
        check_evidence_bytes(self.evidence_bytes)


class BM25Provider(Retriever):
    """BM25 over title + text; evidence = the retrieved passages."""

    Params = BM25Params
    description = "BM25 (bm25s; -P backend=pyserini for Lucene)"
    version = "1"
    #: The cut changes what is handed over, not the index: every evidence_bytes shares one workdir.
    runtime_settings = ("evidence_bytes",)
    #: A task with an external corpus is searched in its prebuilt Lucene index (prebuilt.py).
    handles_external_corpus = True
    prebuilt = False
    #: A temporary folder holding the index rebuilt by `write` (None until then); removed by `close`.
    scratch: Path | None = None

    def prepare(self, task, workdir: Path) -> None:
        self.task = task
        if task.external is not None:
            from .prebuilt import PrebuiltLucene

            self.index, self.prebuilt, self.workdir = PrebuiltLucene.open(task, self.params), True, workdir
            return
        # The store's object arrays let provide() take a whole batch's ids and texts in one NumPy call: per-hit
        # Python work was most of the harness's cost over raw bm25s (benchmarks/bm25.py). Its evidence is the
        # provider's text store, cut to `evidence_bytes` when set.
        self.store = PassageStore(task.corpus, self.params.evidence_bytes)
        self.index = self._build(self.store.passages, workdir)
        self.workdir = workdir

    def _build(self, passages: Sequence[Passage], folder: Path):
        """The configured backend's index of `passages` in `folder` (loaded when a finished one is there)."""
        if self.params.backend == "pyserini":
            from .pyserini_backend import PyseriniIndex

            return PyseriniIndex.build_or_load(passages, folder / "lucene", self.params)
        from .bm25s_backend import Bm25sIndex

        return Bm25sIndex.build_or_load(passages, folder / "bm25s", self.params)

    def write(self, passages: Sequence[Passage], steps: int | None = None) -> WriteCost:
        """Index new passages beside the old: the whole index is rebuilt over both in a temporary folder (BM25's
        statistics are the corpus's), which is the cost reported; the prepared index in the cache is untouched."""
        if self.prebuilt:
            raise RagBenchError("bm25: a task's prebuilt Lucene index (external corpus) cannot be written to; "
                                "write-curve needs a task whose corpus is in memory")
        if not hasattr(self, "index"):
            raise RagBenchError("bm25: prepare() must run before write()")
        start = time.perf_counter()
        before = self.index.size_bytes()
        scratch = Path(tempfile.mkdtemp(prefix="rag-bench-bm25-write-"))
        combined = self.store.extended(passages)
        index = self._build(combined.passages, scratch)
        self._release()
        self.index, self.scratch, self.store = index, scratch, combined
        return WriteCost(seconds=time.perf_counter() - start, bytes_added=self.index.size_bytes() - before,
                         info={"rebuilt_passages": len(combined)})

    def metadata(self) -> dict:
        """The evidence cut and the bytes of the whole passages' text store beside the stored one."""
        if self.prebuilt:
            return {"evidence_bytes": self.params.evidence_bytes, "prebuilt_index": str(self.index.folder)}
        return {"evidence_bytes": self.params.evidence_bytes, "whole_text_bytes": self.store.whole_bytes}

    def _index(self):
        if not hasattr(self, "index"):
            raise RagBenchError("bm25: prepare() must run before search() or provide()")
        return self.index

    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-k (corpus position, score) per query; used by other providers (hybrid) too."""
        return self._index().search(list(queries), k)

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        if not questions:
            return []
        if self.prebuilt:
            return self._index().provide(questions, k)
        positions, scores = self._index().rank([q.text for q in questions], k)
        return self.store.hand_over_arrays(positions, scores)

    def passage_texts(self, doc_ids: Sequence[str]) -> list[str]:
        """Whole stored passages (title and text) by doc id, from a task's prebuilt index (external corpus only);
        dense's prebuilt path reads its evidence through this."""
        if not self.prebuilt:
            raise RagBenchError("bm25: passage_texts() serves a task with an external corpus only")
        return self.index.docstore.texts(doc_ids)

    def index_bytes(self) -> int:
        return self._index().size_bytes()

    def footprint(self) -> dict[str, int]:
        if self.prebuilt:  # the passages' text is stored inside the Lucene index
            return {"index": self.index.size_bytes()}
        return super().footprint()

    def _release(self) -> None:
        """Close the current index and remove the temporary folder of an earlier write."""
        index = getattr(self, "index", None)
        if index is not None and hasattr(index, "close"):
            index.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def close(self) -> None:
        self._release()


@hookimpl
def register_providers(register):
    register("bm25", BM25Provider)

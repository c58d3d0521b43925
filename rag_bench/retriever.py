"""What every retriever shares: a text store of the corpus's passages, and a provider base that ranks them.

A retriever (bm25, dense, a third-party index) ranks corpus positions and
hands the stored passages at those positions to the reader. `PassageStore`
holds them (doc ids, whole passages, the evidence kept for the reader, cut by
``evidence_bytes``) and turns a ranking into `ProvidedEvidence`; `Retriever`
is the `EvidenceProvider` built on one: implement `prepare` (fill `store`,
build the index), `search` and `index_bytes`, and `provide` and `footprint`
follow. Providers that compose retrievers (hybrid) use only this contract:
``search(queries, k)`` for corpus positions and ``store`` for what they mean.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Sequence

import numpy as np

from .errors import RagBenchError
from .provider import EvidenceProvider
from .text import evidence_store, passage_evidence, utf8_size
from .types import Hit, Passage, ProvidedEvidence, Question


def _take(table: np.ndarray, positions: Any) -> list[list]:
    """`table[positions]` as lists, row by row; one vectorised take when `positions` is a 2-D array."""
    if isinstance(positions, np.ndarray):
        return table[positions].tolist()
    return [table[row].tolist() for row in positions]


def _rows(values: Any) -> list[list]:
    return values.tolist() if isinstance(values, np.ndarray) else values


class PassageStore:
    """A retriever's passages in corpus order, and the texts it hands over for them.

    `doc_ids` and `texts` (the whole passage as the reader sees it, title and
    text: `passage_evidence`) are object arrays indexed by corpus position;
    `evidence` is what is stored and handed over: `texts` cut to
    `evidence_bytes` UTF-8 bytes at a word boundary (None: the whole texts,
    the same objects). Object arrays let a batch's ids and texts be taken
    in one NumPy call (`hand_over_arrays`).
    """

    def __init__(self, passages: Sequence[Passage], evidence_bytes: int | None = None):
        self.passages = list(passages)
        self.evidence_bytes = evidence_bytes
        self.doc_ids = np.array([p.doc_id for p in self.passages], dtype=object)
        whole = [passage_evidence(p) for p in self.passages]
        self.texts = np.array(whole, dtype=object)
        self.evidence = self.texts if evidence_bytes is None else np.array(evidence_store(whole, evidence_bytes), dtype=object)
        #: Bytes of the whole passages' text (what the store would hold without a cut).
        self.whole_bytes = utf8_size(whole)

    def __len__(self) -> int:
        return len(self.passages)

    @property
    def stored_bytes(self) -> int:
        """Bytes of the evidence texts kept: a retriever's ``text_store`` in `footprint`."""
        return utf8_size(self.evidence)

    def extended(self, passages: Sequence[Passage]) -> "PassageStore":
        """A store of these passages followed by `passages` (new corpus positions), with the same cut."""
        return PassageStore(self.passages + list(passages), self.evidence_bytes)

    def hand_over(self, ranked: Sequence[tuple[int, float]], **extra: Any) -> ProvidedEvidence:
        """Hits and evidence texts for one ranked list of (corpus position, score); `extra` goes to
        `ProvidedEvidence` (``timings_ms=``, ``info=``)."""
        return ProvidedEvidence(hits=[Hit(self.doc_ids[i], score) for i, score in ranked],
                                evidence=[self.evidence[i] for i, _ in ranked], **extra)

    def hand_over_arrays(self, positions: Any, scores: Any) -> list[ProvidedEvidence]:
        """`hand_over` for a whole batch given as (queries, k) position and score arrays (or lists of rows)."""
        rows = zip(_take(self.doc_ids, positions), _rows(scores), _take(self.evidence, positions))
        return [ProvidedEvidence(hits=list(map(Hit, ids, row_scores)), evidence=texts) for ids, row_scores, texts in rows]


class Retriever(EvidenceProvider):
    """An evidence provider that ranks the passages of its `store` and hands them over as stored.

    Subclasses set `store` in `prepare` and implement `search` (top-k corpus
    positions per query) and `index_bytes`. The default `provide` searches the
    questions' texts and hands over the stored evidence; the default
    `footprint` is ``{"index": index_bytes(), "text_store": store.stored_bytes}``.
    Other providers may compose a retriever through this contract alone.
    """

    #: The passages searched, in corpus order (None until `prepare`).
    store: PassageStore | None = None

    @abstractmethod
    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-k (corpus position in `store`, score) per query, best first."""

    def index_bytes(self) -> int:
        """Bytes of the index at query time (without the text store)."""
        raise NotImplementedError(f"{type(self).__name__} does not report its index size")

    def passage_store(self) -> PassageStore:
        """`store`, or a RagBenchError when `prepare` has not filled it."""
        if self.store is None:
            raise RagBenchError(f"{type(self).__name__}: prepare() must run before its passages are read")
        return self.store

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        store = self.passage_store()
        return [store.hand_over(ranked) for ranked in self.search([q.text for q in questions], k)]

    def footprint(self) -> dict[str, int]:
        return {"index": self.index_bytes(), "text_store": self.passage_store().stored_bytes}

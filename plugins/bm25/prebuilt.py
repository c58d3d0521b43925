"""BM25 over a task's external corpus: a prebuilt Lucene index (pyserini's, e.g. `wikipedia-dpr-100w`).

Used instead of an index over ``task.corpus`` when the task declares an
``external_corpus`` with a ``lucene`` index (``-P backend=pyserini``). The
archive is fetched, verified and unpacked by `rag_bench.external`; ranking is
Lucene BM25 with the provider's k1 and b; the evidence handed over is each
hit's stored raw document (``title + "\\n" + text``, as for in-memory tasks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from rag_bench.api import (
    Hit, Passage, ProvidedEvidence, Question, RagBenchError, evidence_store, folder_bytes, index_folder, index_settings,
    passage_evidence,
)

from .pyserini_backend import check_params, pyserini_api


def passage_from_raw(doc_id: str, raw: str) -> Passage:
    """A passage from a stored raw document: JSON with `title` and `text`, or `contents` = title, newline, text."""
    try:
        row = json.loads(raw)
    except json.JSONDecodeError:
        row = None
    if not isinstance(row, dict):  # plain contents (that may parse as a JSON number or string: "1984")
        row = {"contents": raw}
    if "text" in row:
        return Passage(doc_id, str(row.get("title", "")), str(row["text"]))
    title, sep, text = str(row.get("contents", "")).partition("\n")
    return Passage(doc_id, title, text) if sep else Passage(doc_id, "", title)


class LuceneDocstore:
    """Passage text by doc id from a Lucene index that stores raw documents."""

    def __init__(self, searcher, folder: Path):
        self.searcher = searcher
        self.folder = folder

    def passage(self, doc_id: str) -> Passage:
        doc = self.searcher.doc(doc_id)
        raw = doc.raw() if doc is not None else None
        if raw is None:
            raise RagBenchError(f"the Lucene index in {self.folder} stores no raw document for id {doc_id!r}; "
                                "it must be built with stored raw documents (-storeRaw)")
        return passage_from_raw(doc_id, raw)

    def texts(self, doc_ids: Sequence[str]) -> list[str]:
        """Reader evidence (title and text) for each id, in order."""
        return [passage_evidence(self.passage(d)) for d in doc_ids]


class PrebuiltLucene:
    """A task's prebuilt Lucene index: BM25 ranking and the passage text of every hit."""

    def __init__(self, searcher, folder: Path, params):
        self.searcher = searcher
        self.folder = folder
        self.params = params
        self.docstore = LuceneDocstore(searcher, folder)

    @classmethod
    def open(cls, task, params) -> "PrebuiltLucene":
        """Fetch (verified) and unpack the task's lucene index if needed, and open a BM25 searcher on it."""
        if params.backend != "pyserini":
            raise RagBenchError(
                f"bm25: task {task.name}'s corpus is external ({task.external.passages:,} passages in a prebuilt "
                "Lucene index); search it with -P backend=pyserini (bm25s cannot read a Lucene index)"
            )
        check_params(params)
        settings = index_settings(task, "lucene", "bm25")
        _, searcher_cls = pyserini_api()
        folder = index_folder(task, "lucene", "bm25")
        searcher = searcher_cls(str(folder))
        searcher.set_bm25(float(params.k1), float(params.b))
        expected = settings.get("documents")
        if expected is not None and searcher.num_docs != int(expected):
            searcher.close()
            raise RagBenchError(f"the Lucene index in {folder} holds {searcher.num_docs:,} documents, the card of "
                                f"{task.name} says {int(expected):,}; delete that folder to unpack it again")
        return cls(searcher, folder, params)

    def rank(self, queries: list[str], k: int) -> tuple[list[list[str]], list[list[float]]]:
        """Top-k doc ids and BM25 scores per query."""
        if not queries:
            return [], []
        qids = [str(i) for i in range(len(queries))]
        results = self.searcher.batch_search(queries, qids, k=k, threads=max(1, self.params.threads))
        hits = [results.get(qid, []) for qid in qids]
        return [[h.docid for h in row] for row in hits], [[float(h.score) for h in row] for row in hits]

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        """Ranked hits and their stored passages (cut to `evidence_bytes` when set)."""
        ids, scores = self.rank([q.text for q in questions], k)
        out = []
        for row_ids, row_scores in zip(ids, scores):
            texts = evidence_store(self.docstore.texts(row_ids), self.params.evidence_bytes)
            out.append(ProvidedEvidence(hits=list(map(Hit, row_ids, row_scores)), evidence=texts))
        return out

    def search(self, queries, k):
        raise RagBenchError("bm25: search() returns corpus positions, which an external corpus does not have; "
                            "hybrid cannot run on a task with an external corpus")

    def size_bytes(self) -> int:
        return folder_bytes(self.folder)

    def close(self) -> None:
        self.searcher.close()

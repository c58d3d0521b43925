"""`idf_overlap`: rank passages by the summed IDF of the question words they contain.

A retriever built the way rag-bench's own bm25 and dense providers are: on `rag_bench.api.Retriever`. `prepare`
fills the `PassageStore` (the passages, in corpus order, and the texts the reader is handed) and builds or loads the
index; `search` ranks corpus positions; `index_bytes` says how big the index is. The base does the rest: `provide`
hands over the stored texts at the ranked positions and `footprint` reports ``index`` plus the store's
``text_store``. Everything comes from `rag_bench.api`, the only rag-bench module a plugin imports.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from rag_bench.api import Passage, PassageStore, ProvidedEvidence, Question, RagBenchError, Retriever, WriteCost

WORD = re.compile(r"\w+")
STOPWORDS = frozenset("a an and are as at be by for from has he in is it its of on that the to was were will with who what when where which how".split())
INDEX_FILE = "postings.json"


def words(text: str) -> set[str]:
    """Lower-cased distinct words of `text`, stopwords removed."""
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS}


def add_postings(postings: defaultdict[str, list[int]], passages: Iterable[Passage], start: int = 0) -> None:
    """Append the corpus positions of `passages` (from `start` on) to the postings of the words in title and text."""
    for position, passage in enumerate(passages, start=start):
        for word in words(f"{passage.title} {passage.text}"):
            postings[word].append(position)


@dataclass(frozen=True)
class IdfOverlapParams:
    """Settings (``-P key=value``). Words rarer than `min_idf` count; common ones are ignored."""

    min_idf: float = 0.0
    title_in_evidence: bool = True

    def __post_init__(self):
        if self.min_idf < 0:
            raise ValueError("min_idf must be >= 0")


class IdfOverlapProvider(Retriever):
    """Evidence = the passages sharing the most informative words with the question."""

    Params = IdfOverlapParams
    description = "example plugin: IDF-weighted word overlap"
    # Bump when the cached index format changes: the harness keys workdir by it.
    version = "1"

    def prepare(self, task, workdir: Path) -> None:
        index_path = workdir / INDEX_FILE
        if index_path.is_file():  # built by an earlier run with the same task and settings
            postings = defaultdict(list, json.loads(index_path.read_text(encoding="utf-8")))
        else:
            postings = defaultdict(list)
            add_postings(postings, task.corpus)
            tmp = index_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(postings), encoding="utf-8")
            tmp.replace(index_path)  # atomic: an interrupted build leaves no half index
        self._index_bytes = index_path.stat().st_size
        self.postings = postings
        # The text store: what provide() hands the reader for each corpus position (the base reads it).
        self.store = PassageStore(self._stored(task.corpus))
        self._weigh()

    def _stored(self, passages: Sequence[Passage]) -> list[Passage]:
        """The passages as the store keeps them. A store hands over title and text (`rag_bench.api.passage_evidence`);
        with ``title_in_evidence=false`` it keeps them without their titles, so it holds and hands over the text
        alone. The index is built from the passages as given, titles included, either way."""
        if self.params.title_in_evidence:
            return list(passages)
        return [Passage(p.doc_id, "", p.text) for p in passages]

    def _weigh(self) -> None:
        n = len(self.store)
        self.idf = {w: math.log(1 + n / len(docs)) for w, docs in self.postings.items()}

    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-k (corpus position, summed IDF of the shared words) per query. Ties are broken by corpus position,
        so results are identical on every run."""
        self.passage_store()  # a RagBenchError naming prepare() when it has not run
        out = []
        for query in queries:
            scores: dict[int, float] = defaultdict(float)
            for word in words(query):
                weight = self.idf.get(word, 0.0)
                if weight <= self.params.min_idf:
                    continue
                for position in self.postings[word]:
                    scores[position] += weight
            out.append(heapq.nsmallest(k, scores.items(), key=lambda item: (-item[1], item[0])))
        return out

    def index_bytes(self) -> int:
        return self._index_bytes

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        """The base's `provide` (search, then hand over the stored texts), plus one number kept in each record's
        ``info``. A retriever that keeps nothing extra leaves `provide` to the base."""
        store = self.passage_store()
        ranked = self.search([q.text for q in questions], k)
        return [store.hand_over(top, info={"matched_words": len(words(q.text))}) for q, top in zip(questions, ranked)]

    def write(self, passages: Sequence[Passage], steps: int | None = None) -> WriteCost:
        """The optional write hook (``rag-bench write-curve``): append new passages to the store and the postings in
        memory and recompute the IDF weights. The index file in `workdir` stays as `prepare` left it (the harness
        prepares from it again), so nothing is written to disk."""
        if self.store is None:
            raise RagBenchError("idf_overlap: prepare() must run before write()")
        postings = defaultdict(list, {word: list(docs) for word, docs in self.postings.items()})
        add_postings(postings, passages, start=len(self.store))
        self.store = self.store.extended(self._stored(passages))
        self.postings = postings
        self._weigh()
        before, self._index_bytes = self._index_bytes, len(json.dumps(postings).encode("utf-8"))
        return WriteCost(bytes_added=self._index_bytes - before)

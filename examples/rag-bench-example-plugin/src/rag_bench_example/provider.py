"""`idf_overlap`: rank passages by the summed IDF of the question words they contain."""

from __future__ import annotations

import heapq
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rag_bench.api import EvidenceProvider, Hit, Passage, ProvidedEvidence, Question, RagBenchError, WriteCost

WORD = re.compile(r"\w+")
STOPWORDS = frozenset("a an and are as at be by for from has he in is it its of on that the to was were will with who what when where which how".split())
INDEX_FILE = "postings.json"


def words(text: str) -> set[str]:
    """Lower-cased distinct words of `text`, stopwords removed."""
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS}


@dataclass(frozen=True)
class IdfOverlapParams:
    """Settings (``-P key=value``). Words rarer than `min_idf` count; common ones are ignored."""

    min_idf: float = 0.0
    title_in_evidence: bool = True

    def __post_init__(self):
        if self.min_idf < 0:
            raise ValueError("min_idf must be >= 0")


class IdfOverlapProvider(EvidenceProvider):
    """Evidence = the passages sharing the most informative words with the question."""

    Params = IdfOverlapParams
    description = "example plugin: IDF-weighted word overlap"
    # Bump when the cached index format changes: the harness keys workdir by it.
    version = "1"

    def prepare(self, task, workdir: Path) -> None:
        self.passages = list(task.corpus)
        index_path = workdir / INDEX_FILE
        if index_path.is_file():  # built by an earlier run with the same task and settings
            postings = json.loads(index_path.read_text(encoding="utf-8"))
        else:
            postings = defaultdict(list)
            for position, passage in enumerate(self.passages):
                for word in words(f"{passage.title} {passage.text}"):
                    postings[word].append(position)
            tmp = index_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(postings), encoding="utf-8")
            tmp.replace(index_path)  # atomic: an interrupted build leaves no half index
        self.index_bytes = index_path.stat().st_size
        self.postings = postings
        self._weigh()

    def _weigh(self) -> None:
        n = len(self.passages)
        self.idf = {w: math.log(1 + n / len(docs)) for w, docs in self.postings.items()}

    def write(self, passages: Sequence[Passage], steps: int | None = None) -> WriteCost:
        """The optional write hook (``rag-bench write-curve``): append new passages to the postings in memory and
        recompute the IDF weights. The index file in `workdir` stays as `prepare` left it (the harness prepares
        from it again), so nothing is written to disk."""
        if not hasattr(self, "postings"):
            raise RagBenchError("idf_overlap: prepare() must run before write()")
        postings = defaultdict(list, {word: list(docs) for word, docs in self.postings.items()})
        for position, passage in enumerate(passages, start=len(self.passages)):
            for word in words(f"{passage.title} {passage.text}"):
                postings[word].append(position)
        self.passages = self.passages + list(passages)
        self.postings = postings
        self._weigh()
        before, self.index_bytes = self.index_bytes, len(json.dumps(postings).encode("utf-8"))
        return WriteCost(bytes_added=self.index_bytes - before)

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        if not hasattr(self, "postings"):
            raise RagBenchError("idf_overlap: prepare() must run before provide()")
        out = []
        for question in questions:
            scores: dict[int, float] = defaultdict(float)
            for word in words(question.text):
                weight = self.idf.get(word, 0.0)
                if weight <= self.params.min_idf:
                    continue
                for position in self.postings[word]:
                    scores[position] += weight
            # Ties broken by corpus position so results are identical on every run.
            top = heapq.nsmallest(k, scores.items(), key=lambda item: (-item[1], item[0]))
            hits = [Hit(self.passages[i].doc_id, score) for i, score in top]
            evidence = [self._evidence(i) for i, _ in top]
            out.append(ProvidedEvidence(hits=hits, evidence=evidence, info={"matched_words": len(words(question.text))}))
        return out

    def _evidence(self, position: int) -> str:
        passage = self.passages[position]
        return f"{passage.title}\n{passage.text}" if self.params.title_in_evidence else passage.text

    def footprint(self) -> dict[str, int]:
        return {
            "index": self.index_bytes,
            "text_store": sum(len(f"{p.title}\n{p.text}".encode("utf-8")) for p in self.passages),
        }

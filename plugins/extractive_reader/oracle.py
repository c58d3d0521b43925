"""The `oracle` provider: hands the reader each question's gold passages (a reader's upper bound, not a retriever)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rag_bench.api import EvidenceProvider, Hit, ProvidedEvidence, Question

from .data import passage_text


class OracleProvider(EvidenceProvider):
    """The gold passages of each question, in qrels order, as title + text: what a reader reaches given them."""

    description = "the question's gold passages (uses the gold labels): a reader's upper bound"
    version = "1"

    def prepare(self, task: Any, workdir: Path) -> None:
        self._passages = task.passages_by_id

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        out = []
        for question in questions:
            gold = [self._passages[d] for d in question.gold_doc_ids if d in self._passages][:k]
            out.append(ProvidedEvidence(hits=[Hit(p.doc_id, 1.0) for p in gold], evidence=[passage_text(p) for p in gold]))
        return out

    def metadata(self) -> dict[str, Any]:
        return {"uses_gold_labels": True}

"""The `no_retrieval` provider: no evidence at all (the closed-book baseline)."""

from pathlib import Path
from typing import Sequence

from rag_bench.api import EvidenceProvider, ProvidedEvidence, Question, hookimpl


class NoRetrieval(EvidenceProvider):
    """Hands the reader no evidence; retrieval metrics are all zero by construction."""

    description = "closed book: the reader gets no evidence"
    needs_corpus = False

    def prepare(self, task, workdir: Path) -> None:
        pass

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        return [ProvidedEvidence(hits=[], evidence=[]) for _ in questions]


@hookimpl
def register_providers(register):
    register("no_retrieval", NoRetrieval)

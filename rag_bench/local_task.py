"""Tasks from a card file on disk: bring your own corpus and questions (BEIR-like JSONL).

``rag-bench run --task path/to/card.yaml`` loads such a card. Its `builder`
must be ``jsonl`` and its sources ``corpus`` and ``queries``, with paths
relative to the card (or absolute) and their sha256::

    corpus.jsonl   {"_id", "title", "text"}
    queries.jsonl  {"_id", "text", "answers", "split", "gold_doc_ids", "gold_evidence" (optional)}

Without `gold_evidence`, it is derived from the gold passages: the sentences
that contain an answer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping

from .errors import RagBenchError
from .gold_evidence import gold_evidence
from .jsonl import read_jsonl
from .task import TaskCard, TaskDefinition
from .types import Passage, Question

CARD_SUFFIXES = (".yaml", ".yml")


def is_card_path(name: str) -> bool:
    return name.endswith(CARD_SUFFIXES)


def build_jsonl(card: TaskCard, sources: Mapping[str, Path]) -> tuple[list[Passage], list[Question]]:
    corpus = [
        Passage(str(row["_id"]), str(row.get("title", "")), str(row["text"]))
        for row in read_jsonl(sources["corpus"], required=("_id", "text"))
    ]
    by_id = {p.doc_id: p for p in corpus}
    questions = []
    for row in read_jsonl(sources["queries"], required=("_id", "text", "answers", "split")):
        gold = tuple(str(d) for d in row.get("gold_doc_ids", ()))
        evidence = tuple(row.get("gold_evidence") or ())
        if not evidence and gold:
            evidence = gold_evidence([by_id[d].text for d in gold if d in by_id], row["answers"])
        questions.append(
            Question(str(row["_id"]), str(row["text"]), tuple(row["answers"]), str(row["split"]), gold, evidence, row.get("meta") or {})
        )
    return corpus, questions


def definition_from_card_file(path: Path) -> TaskDefinition:
    """Load a card file whose sources are local files (paths relative to the card)."""
    if not path.is_file():
        raise RagBenchError(f"task card {path} not found")
    card = TaskCard.from_yaml(path)
    if card.raw.get("builder") != "jsonl":
        raise RagBenchError(f"task card {path}: a card file given by path needs `builder: jsonl`")
    names = {s.name for s in card.sources}
    if not {"corpus", "queries"} <= names:
        raise RagBenchError(f"task card {path}: needs sources named `corpus` and `queries`")
    sources = tuple(replace(s, path=str((path.parent / s.path).resolve())) for s in card.sources)
    return TaskDefinition(replace(card, sources=sources), build_jsonl)

"""Builder of the mirage task (see mirage.yaml, beside this module for the construction it implements).

The doc pool and the oracle are optional sources: without them the task has
its questions and an empty corpus (closed-book providers only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from rag_bench.api import Passage, Question, RagBenchError, TaskCard, open_text

from .text import assign_splits

#: The cards this module builds (`<name>.yaml` beside it).
CARDS = ("mirage",)

QUESTION_FIELDS = ("source", "query_id", "query", "answer")
CHUNK_FIELDS = ("mapped_id", "doc_name", "doc_chunk", "support")


def load_json(path: Path, kind: type, what: str) -> Any:
    """A whole JSON file (gzip'd or not) whose top level must be `kind`."""
    try:
        with open_text(path) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise RagBenchError(f"mirage: {path} is not valid JSON ({exc.msg} at line {exc.lineno}); download it again") from None
    if not isinstance(data, kind):
        raise RagBenchError(f"mirage: {path} should hold {what}, found a JSON {type(data).__name__}")
    return data


def require(rows: Any, fields: tuple[str, ...], path: Path) -> None:
    for number, row in enumerate(rows):
        missing = [f for f in fields if f not in row]
        if missing:
            raise RagBenchError(f"mirage: {path} entry {number} lacks {', '.join(missing)}; is it MIRAGE's file?")


def build(card: TaskCard, sources: Mapping[str, Path]) -> tuple[list[Passage], list[Question]]:
    rows = load_json(sources["dataset"], list, "a list of questions")
    require(rows, QUESTION_FIELDS, sources["dataset"])

    corpus: list[Passage] = []
    gold: dict[str, list[str]] = {}
    supporting: dict[str, list[str]] = {}
    if "doc_pool" in sources:
        pool = load_json(sources["doc_pool"], list, "a list of chunks")
        require(pool, CHUNK_FIELDS, sources["doc_pool"])
        for position, chunk in enumerate(pool):
            doc_id = f"mirage-{position:05d}"
            corpus.append(Passage(doc_id, chunk["doc_name"], chunk["doc_chunk"]))
            if chunk["support"] == 1:
                gold.setdefault(chunk["mapped_id"], []).append(doc_id)
                supporting.setdefault(chunk["mapped_id"], []).append(chunk["doc_chunk"].strip())
    oracle: dict[str, Any] = {}
    if "oracle" in sources:
        oracle = load_json(sources["oracle"], dict, "an object keyed by query_id")
        require(oracle.values(), ("doc_chunk",), sources["oracle"])

    splits: dict[str, str] = {}
    ratios = dict(card.raw["splits"])
    for origin in sorted({row["source"] for row in rows}):
        ids = [row["query_id"] for row in rows if row["source"] == origin]
        splits.update(assign_splits(ids, ratios, card.params()["split_salt"]))

    questions = []
    for row in rows:
        qid = row["query_id"]
        evidence = (oracle[qid]["doc_chunk"].strip(),) if qid in oracle else tuple(supporting.get(qid, ()))
        questions.append(
            Question(
                qid=qid,
                text=row["query"],
                answers=tuple(row["answer"]),
                split=splits[qid],
                gold_doc_ids=tuple(gold.get(qid, ())),
                gold_evidence=evidence,
                meta={"source": row["source"], "doc_name": row.get("doc_name"), "num_doc_labels": row.get("num_doc_labels")},
            )
        )
    return corpus, questions

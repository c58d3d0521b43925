"""Builder of the hotpotqa_5k task (see hotpotqa_5k.yaml, beside this module for the construction it implements)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from rag_bench.api import Passage, Question, RagBenchError, TaskCard, open_text, read_jsonl

from .text import assign_splits

#: The cards this module builds (`<name>.yaml` beside it).
CARDS = ("hotpotqa_5k",)

TYPES = ("bridge", "comparison")


def complete_records(path: Path) -> Iterator[dict[str, Any]]:
    """The complete records of an official-format HotpotQA file (a JSON array), stopping at a cut.

    The stored upstream copy is truncated mid-record, so the array is decoded
    one element at a time and the incomplete tail is ignored.
    """
    with open_text(path) as fh:
        text = fh.read()
    decoder = json.JSONDecoder()
    position = text.find("[") + 1
    while position:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return
        yield record


def supporting_sentences(record: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """title -> the supporting sentences of that paragraph (facts pointing past the end are skipped)."""
    sentences = {title: lines for title, lines in record["context"]}
    out: dict[str, list[str]] = {}
    for title, index in record["supporting_facts"]:
        lines = sentences.get(title, [])
        if 0 <= index < len(lines) and lines[index].strip():
            out.setdefault(title, []).append(lines[index].strip())
    return {title: tuple(lines) for title, lines in out.items()}


def official_evidence(card: TaskCard, path: Path, types: Mapping[str, str]) -> dict[str, dict[str, tuple[str, ...]]]:
    """_id -> supporting sentences by title, from the official-format records; types cross-checked."""
    expected = card.params()["official_records"]
    records = list(complete_records(path))
    if len(records) != expected:
        raise RagBenchError(f"hotpotqa_5k: expected {expected} complete official-format records, parsed {len(records)}")
    out = {}
    for record in records:
        qid = record["_id"]
        if qid in types and types[qid] != record["type"]:
            raise RagBenchError(
                f"hotpotqa_5k: question {qid} is {record['type']} in the official file but row order says "
                f"{types[qid]}; the IRCoT file is not the first-250-per-type subset the card assumes"
            )
        out[qid] = supporting_sentences(record)
    return out


def build(card: TaskCard, sources: Mapping[str, Path]) -> tuple[list[Passage], list[Question]]:
    params = card.params()
    rows = list(read_jsonl(sources["hotpotqa_dev"], required=("question_id", "question_text", "answers_objects", "contexts")))
    types = {row["question_id"]: TYPES[index >= params["bridge_rows"]] for index, row in enumerate(rows)}
    sentences = official_evidence(card, sources["hotpotqa_official"], types)

    corpus: list[Passage] = []
    ids: dict[tuple[str, str], str] = {}
    for row in rows:
        for ctx in row["contexts"]:
            key = (ctx["title"], ctx["paragraph_text"].strip())
            if key not in ids:
                ids[key] = f"hotpot-{len(corpus):04d}"
                corpus.append(Passage(ids[key], *key))

    ratios = dict(card.raw["splits"])
    splits: dict[str, str] = {}
    for kind in TYPES:
        splits.update(assign_splits([qid for qid, t in types.items() if t == kind], ratios, params["split_salt"]))

    questions = []
    for row in rows:
        qid = row["question_id"]
        support = [ctx for ctx in row["contexts"] if ctx["is_supporting"]]
        if len(support) != 2:
            raise RagBenchError(f"hotpotqa_5k: question {qid} has {len(support)} supporting paragraphs, expected 2")
        by_title = sentences.get(qid, {})
        if by_title:
            evidence = tuple(line for ctx in support for line in by_title.get(ctx["title"], ()))
        else:
            evidence = tuple(ctx["paragraph_text"].strip() for ctx in support)
        questions.append(
            Question(
                qid=qid,
                text=row["question_text"],
                answers=tuple(span for answer in row["answers_objects"] for span in answer["spans"]),
                split=splits[qid],
                gold_doc_ids=tuple(ids[(ctx["title"], ctx["paragraph_text"].strip())] for ctx in support),
                gold_evidence=evidence,
                meta={"type": types[qid], "evidence": "sentences" if by_title else "paragraphs"},
            )
        )
    return corpus, questions

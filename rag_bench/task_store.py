"""Prepare tasks into their BEIR-like folder and load them back.

Layout of ``<cache>/tasks/<name>/v<version>/``::

    corpus.jsonl        {"_id", "title", "text"}
    queries.jsonl       {"_id", "text", "answers", "split", "gold_evidence", "meta"}
    qrels/<split>.tsv   query-id, corpus-id, score (BEIR's header)
    task.json           card version, source and file sha256 (written last: marks the folder complete)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from .errors import RagBenchError
from .jsonl import read_jsonl, sha256_file, write_json_atomic, write_jsonl
from .paths import cache_dir
from .local_task import definition_from_card_file, is_card_path
from .registry import registry
from .sources import available_locally, locate_all
from .task import Task, TaskCard, TaskDefinition
from .types import Passage, Question

MARKER = "task.json"


def task_dir(card: TaskCard) -> Path:
    return cache_dir() / "tasks" / card.name / f"v{card.version}"


def validate(card: TaskCard, corpus: list[Passage], questions: list[Question]) -> None:
    """Refuse data that would make scores meaningless, with one clear message each."""
    name = card.name
    # e.g. [doc_pool]: the corpus comes from optional sources; an external corpus lives in prebuilt indexes
    if not corpus and not card.raw.get("optional_corpus") and card.external_corpus is None:
        raise RagBenchError(f"task {name}: the corpus is empty; check the task's source files")
    dup_docs = [d for d, n in Counter(p.doc_id for p in corpus).items() if n > 1]
    if dup_docs:
        raise RagBenchError(f"task {name}: duplicate doc ids in the corpus: {', '.join(dup_docs[:5])}")
    if not questions:
        raise RagBenchError(f"task {name}: no questions")
    dup_q = [q for q, n in Counter(q.qid for q in questions).items() if n > 1]
    if dup_q:
        raise RagBenchError(f"task {name}: duplicate question ids: {', '.join(dup_q[:5])}")
    ids = {p.doc_id for p in corpus}
    for q in questions:
        if q.split not in card.splits:
            raise RagBenchError(f"task {name}: question {q.qid} has split {q.split!r}, not one of {card.splits}")
        unknown = [d for d in q.gold_doc_ids if d not in ids]
        if unknown:
            raise RagBenchError(f"task {name}: question {q.qid} names gold passages not in the corpus: {unknown}")


def write_task(card: TaskCard, corpus: list[Passage], questions: list[Question], sources: dict[str, Path]) -> Path:
    """Write a prepared task folder atomically (built in a temporary folder, then renamed)."""
    validate(card, corpus, questions)
    final = task_dir(card)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        write_jsonl(tmp / "corpus.jsonl", ({"_id": p.doc_id, "title": p.title, "text": p.text} for p in corpus))
        write_jsonl(
            tmp / "queries.jsonl",
            (
                {
                    "_id": q.qid,
                    "text": q.text,
                    "answers": list(q.answers),
                    "split": q.split,
                    "gold_evidence": list(q.gold_evidence),
                    "meta": q.meta,
                }
                for q in questions
            ),
        )
        (tmp / "qrels").mkdir()
        for split in card.splits:
            with open(tmp / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="\n") as fh:
                fh.write("query-id\tcorpus-id\tscore\n")
                for q in questions:
                    if q.split == split:
                        for doc_id in q.gold_doc_ids:
                            fh.write(f"{q.qid}\t{doc_id}\t1\n")
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        write_json_atomic(
            tmp / MARKER,
            {
                "name": card.name,
                "version": card.version,
                "sources_sha256": {name: sha256_file(path) for name, path in sorted(sources.items())},
                "card_sources_sha256": {spec.name: spec.sha256 for spec in card.sources},
                "files_sha256": {f: sha256_file(tmp / f) for f in files},
                "counts": {"passages": len(corpus), "questions": len(questions)},
            },
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_task(card: TaskCard, folder: Path) -> Task:
    """Load a prepared task folder, validating every line."""
    meta = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    corpus = [
        Passage(row["_id"], row.get("title", ""), row["text"])
        for row in read_jsonl(folder / "corpus.jsonl", required=("_id", "text"))
    ]
    gold: dict[str, list[str]] = {}
    for split in card.splits:
        qrels = folder / "qrels" / f"{split}.tsv"
        if qrels.is_file():
            for line in qrels.read_text(encoding="utf-8").splitlines()[1:]:
                qid, doc_id, score = line.split("\t")
                if float(score) > 0:
                    gold.setdefault(qid, []).append(doc_id)
    questions = [
        Question(
            qid=row["_id"],
            text=row["text"],
            answers=tuple(row["answers"]),
            split=row["split"],
            gold_doc_ids=tuple(gold.get(row["_id"], ())),
            gold_evidence=tuple(row.get("gold_evidence", ())),
            meta=row.get("meta") or {},
        )
        for row in read_jsonl(folder / "queries.jsonl", required=("_id", "text", "answers", "split"))
    ]
    validate(card, corpus, questions)
    return Task(
        card=card,
        path=folder,
        corpus=corpus,
        questions=questions,
        files_sha256=meta["files_sha256"],
        source_sha256=meta["sources_sha256"],
    )


def is_prepared(card: TaskCard) -> bool:
    folder = task_dir(card)
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    card_sources = {spec.name: spec.sha256 for spec in card.sources}
    # An optional source that was missing when the task was prepared and is there now: rebuild.
    if any(s.optional and s.name not in meta.get("sources_sha256", {}) and available_locally(s)
           for s in card.sources_to_prepare()):
        return False
    return meta.get("version") == card.version and meta.get("card_sources_sha256") == card_sources and all(
        (folder / f).is_file() and sha256_file(folder / f) == digest for f, digest in meta["files_sha256"].items()
    )


def prepare_definition(definition: TaskDefinition, *, force: bool = False) -> Task:
    card = definition.card
    if force or not is_prepared(card):
        sources = locate_all(card.sources_to_prepare())
        corpus, questions = definition.build(card, sources)
        write_task(card, corpus, questions, sources)
    return read_task(card, task_dir(card))


def load_task(name: str, *, force: bool = False) -> Task:
    """The prepared task `name` (or a card file path): from the cache, else built from its verified sources."""
    if is_card_path(name):
        definition = definition_from_card_file(Path(name))
    else:
        definition = registry().tasks.get(name)
    return prepare_definition(definition, force=force)

"""Builder of the musique task (see musique.yaml, beside this module): 100 MuSiQue questions over their 1,890 paragraphs, test only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from rag_bench.api import Passage, Question, RagBenchError, TaskCard, gold_evidence

from .hipporag_data import listed_paragraphs, read_json

#: The cards this module builds (`<name>.yaml` beside it).
CARDS = ("musique",)

RECORD_FIELDS = ("id", "question", "answer", "answer_aliases", "paragraphs", "question_decomposition")


def read_records(path: Path) -> list[dict[str, Any]]:
    """MuSiQue records (MuSiQue's own format) from a JSON list, each checked for the fields the task uses."""
    records = read_json(path, list, "a list of MuSiQue records")
    for position, record in enumerate(records):
        missing = [name for name in RECORD_FIELDS if not isinstance(record, dict) or name not in record]
        if missing:
            raise RagBenchError(f"{path}: record {position} lacks {', '.join(missing)}; is it HippoRAG's musique_train.json?")
    return records


def hop_support(record: dict[str, Any], ids: Mapping[tuple[str, str], str]) -> list[tuple[str, str, str]]:
    """(doc id, paragraph text, hop answer) for each hop of the record's decomposition, in hop order."""
    paragraphs = record["paragraphs"]
    out = []
    for hop in record["question_decomposition"]:
        paragraph = paragraphs[hop["paragraph_support_idx"]]
        if not paragraph["is_supporting"]:
            raise RagBenchError(f"musique: question {record['id']}: hop {hop['id']} points at a non-supporting paragraph")
        key = (paragraph["title"], paragraph["paragraph_text"].strip())
        if key not in ids:
            raise RagBenchError(f"musique: question {record['id']}: supporting paragraph {key[0]!r} is not in the corpus file")
        out.append((ids[key], key[1], hop["answer"]))
    return out


def build(card: TaskCard, sources: Mapping[str, Path]) -> tuple[list[Passage], list[Question]]:
    """Corpus from the corpus file by position; gold passages and per-hop evidence from each question's decomposition."""
    corpus = [
        Passage(f"musique-{position:04d}", title, text)
        for position, (title, text) in enumerate(listed_paragraphs(sources["musique_corpus"]))
    ]
    ids = {(p.title, p.text): p.doc_id for p in corpus}
    split = card.default_split
    questions = []
    for record in read_records(sources["musique_questions"]):
        hops = hop_support(record, ids)
        supporting = sum(bool(p["is_supporting"]) for p in record["paragraphs"])
        if supporting != len(hops):
            raise RagBenchError(
                f"musique: question {record['id']} marks {supporting} supporting paragraphs but has {len(hops)} hops"
            )
        questions.append(
            Question(
                qid=record["id"],
                text=record["question"],
                answers=(record["answer"], *record["answer_aliases"]),
                split=split,
                gold_doc_ids=tuple(doc_id for doc_id, _, _ in hops),
                gold_evidence=tuple(s for _, text, answer in hops for s in gold_evidence([text], [answer])),
                meta={"hops": len(hops), "type": record["id"].split("__")[0]},
            )
        )
    return corpus, questions

"""Builder of the nq_5k task (see tasks/nq_5k.yaml for the construction it implements)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from rag_bench.errors import RagBenchError
from rag_bench.gold_evidence import gold_evidence
from rag_bench.jsonl import read_jsonl
from rag_bench.task import TaskCard
from rag_bench.types import Passage, Question

from .text import assign_splits, rank_key

CORPUS_SIZE = 5000


def flashrag_passage(row: dict) -> tuple[str, str]:
    """FlashRAG's `contents`: a quoted title line, then the passage text."""
    title, _, text = row["contents"].partition("\n")
    return title.strip().strip('"'), text.strip()


def build(card: TaskCard, sources: Mapping[str, Path]) -> tuple[list[Passage], list[Question]]:
    params = card.params()
    corpus: list[Passage] = []
    gold_ids: dict[tuple[str, str], str] = {}
    oracle = list(read_jsonl(sources["nq_oracle"], required=("question", "answers", "ctxs")))
    for row in oracle:
        ctx = row["ctxs"][0]
        key = (ctx["title"], ctx["text"])
        if key not in gold_ids:
            gold_ids[key] = f"nq-gold-{len(gold_ids):04d}"
            corpus.append(Passage(gold_ids[key], ctx["title"], ctx["text"]))

    for row in read_jsonl(sources["flashrag_sample"], required=("id", "contents")):
        title, text = flashrag_passage(row)
        corpus.append(Passage(f"flashrag-{int(row['id']):04d}", title, text))

    taken_titles = {p.title for p in corpus}
    seen: set[tuple[str, str]] = set()
    candidates: list[tuple[str, str]] = []
    for row in read_jsonl(sources["hotpotqa_dev"], required=("contexts",)):
        for ctx in row["contexts"]:
            key = (ctx["title"], ctx["paragraph_text"].strip())
            if key in seen or key[0] in taken_titles:
                continue
            seen.add(key)
            candidates.append(key)
    candidates.sort(key=lambda key: rank_key(params["distractor_salt"], *key))
    wanted = CORPUS_SIZE - len(corpus)
    if wanted != params["distractors"] or len(candidates) < wanted:
        raise RagBenchError(
            f"nq_5k: expected {params['distractors']} distractor slots and at least that many HotpotQA "
            f"paragraphs, found {wanted} slots and {len(candidates)} paragraphs; are the source files right?"
        )
    for rank, (title, text) in enumerate(candidates[:wanted]):
        corpus.append(Passage(f"hotpot-{rank:04d}", title, text))

    splits = assign_splits([row["question"] for row in oracle], dict(card.raw["splits"]), params["split_salt"])
    questions = []
    for index, row in enumerate(oracle):
        ctx = row["ctxs"][0]
        questions.append(
            Question(
                qid=f"nq-{index:04d}",
                text=row["question"],
                answers=tuple(row["answers"]),
                split=splits[row["question"]],
                gold_doc_ids=(gold_ids[(ctx["title"], ctx["text"])],),
                gold_evidence=gold_evidence([ctx["text"]], row["answers"]),
            )
        )
    return corpus, questions

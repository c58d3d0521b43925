"""Builder of the nq_5k task (see nq_5k.yaml, beside this module for the construction it implements).

Its pieces (gold passages, FlashRAG passages, ranked HotpotQA distractors,
questions) are also the first steps of the NQ corpus family (nq_family.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from rag_bench.api import Passage, Question, RagBenchError, TaskCard, gold_evidence, read_jsonl

from .text import assign_splits, rank_key

#: The cards this module builds (`<name>.yaml` beside it).
CARDS = ("nq_5k",)

CORPUS_SIZE = 5000


def flashrag_passage(row: dict) -> tuple[str, str]:
    """FlashRAG's `contents`: a quoted title line, then the passage text."""
    title, _, text = row["contents"].partition("\n")
    return title.strip().strip('"'), text.strip()


def read_oracle(path: Path) -> list[dict]:
    """The rows of the lost-in-the-middle NQ-open oracle file, in file order."""
    return list(read_jsonl(path, required=("question", "answers", "ctxs")))


def oracle_gold_key(row: dict) -> tuple[str, str]:
    """(title, text) of an oracle row's gold passage."""
    ctx = row["ctxs"][0]
    return ctx["title"], ctx["text"]


def gold_passages(oracle: Sequence[dict]) -> list[Passage]:
    """The distinct gold passages in order of first occurrence: nq-gold-0000, nq-gold-0001, ..."""
    seen: set[tuple[str, str]] = set()
    corpus: list[Passage] = []
    for row in oracle:
        key = oracle_gold_key(row)
        if key not in seen:
            seen.add(key)
            corpus.append(Passage(f"nq-gold-{len(corpus):04d}", *key))
    return corpus


def flashrag_passages(path: Path) -> list[Passage]:
    """The FlashRAG quick-start passages in file order: flashrag-NNNN from the source `id`."""
    return [
        Passage(f"flashrag-{int(row['id']):04d}", *flashrag_passage(row))
        for row in read_jsonl(path, required=("id", "contents"))
    ]


def hotpot_candidates(path: Path, taken_titles: set[str], salt: str) -> list[tuple[str, str]]:
    """Distinct (title, paragraph) pairs of the IRCoT HotpotQA dev file whose title is not taken, ranked by hash."""
    seen: set[tuple[str, str]] = set()
    candidates: list[tuple[str, str]] = []
    for row in read_jsonl(path, required=("contexts",)):
        for ctx in row["contexts"]:
            key = (ctx["title"], ctx["paragraph_text"].strip())
            if key in seen or key[0] in taken_titles:
                continue
            seen.add(key)
            candidates.append(key)
    candidates.sort(key=lambda key: rank_key(salt, *key))
    return candidates


def hotpot_passages(candidates: Sequence[tuple[str, str]]) -> list[Passage]:
    """Ranked HotpotQA candidates as passages: hotpot-NNNN by rank."""
    return [Passage(f"hotpot-{rank:04d}", title, text) for rank, (title, text) in enumerate(candidates)]


def oracle_questions(
    oracle: Sequence[dict], gold: Sequence[Passage], ratios: Mapping[str, float], split_salt: str
) -> list[Question]:
    """Every oracle row as a question (nq-NNNN by row), split by the hash of its text, with gold passage and evidence."""
    gold_ids = {(p.title, p.text): p.doc_id for p in gold}
    splits = assign_splits([row["question"] for row in oracle], dict(ratios), split_salt)
    questions = []
    for index, row in enumerate(oracle):
        key = oracle_gold_key(row)
        questions.append(
            Question(
                qid=f"nq-{index:04d}",
                text=row["question"],
                answers=tuple(row["answers"]),
                split=splits[row["question"]],
                gold_doc_ids=(gold_ids[key],),
                gold_evidence=gold_evidence([key[1]], row["answers"]),
            )
        )
    return questions


def build(card: TaskCard, sources: Mapping[str, Path]) -> tuple[list[Passage], list[Question]]:
    params = card.params()
    oracle = read_oracle(sources["nq_oracle"])
    gold = gold_passages(oracle)
    corpus = gold + flashrag_passages(sources["flashrag_sample"])
    candidates = hotpot_candidates(sources["hotpotqa_dev"], {p.title for p in corpus}, params["distractor_salt"])
    wanted = CORPUS_SIZE - len(corpus)
    if wanted != params["distractors"] or len(candidates) < wanted:
        raise RagBenchError(
            f"nq_5k: expected {params['distractors']} distractor slots and at least that many HotpotQA "
            f"paragraphs, found {wanted} slots and {len(candidates)} paragraphs; are the source files right?"
        )
    corpus += hotpot_passages(candidates[:wanted])
    questions = oracle_questions(oracle, gold, card.raw["splits"], params["split_salt"])
    return corpus, questions

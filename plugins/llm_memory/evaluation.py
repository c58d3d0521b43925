"""Measuring a memory outside a run: routing recall and evidence quality on a set of questions, and the hold-out write test."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rag_bench.scoring.evidence import rouge_l
from rag_bench.types import Passage, Question

from .generation import generate, route
from .system import MemorySystem
from .write import add_passages

BATCH = 32


def routing_recall(system: MemorySystem, questions: Sequence[Question], k: int) -> float:
    """Share of questions whose gold passage is among the top-k routed z_i."""
    if not questions:
        return float("nan")
    hits = 0
    for start in range(0, len(questions), BATCH):
        batch = questions[start : start + BATCH]
        routed = route(system.model, system.tokenizer, [q.text for q in batch], k, system.params)
        for q, row in zip(batch, routed.positions.tolist()):
            hits += any(system.doc_ids[i] in q.gold_doc_ids for i in row)
    return hits / len(questions)


def evidence_rouge(system: MemorySystem, questions: Sequence[Question]) -> float:
    """Mean ROUGE-L of the top-1 generated evidence against the gold evidence."""
    scores = []
    for start in range(0, len(questions), BATCH):
        batch = questions[start : start + BATCH]
        routed = route(system.model, system.tokenizer, [q.text for q in batch], 1, system.params)
        texts = generate(system.model, system.tokenizer, [q.text for q in batch], routed.positions, system.params)
        scores += [rouge_l(t[0], " ".join(q.gold_evidence)) for q, t in zip(batch, texts) if q.gold_evidence]
    return sum(scores) / len(scores) if scores else float("nan")


def gold_slice(corpus: Sequence[Passage], questions: Sequence[Question], count: int) -> tuple[list[Passage], list[Question]]:
    """The gold passages of the first questions (up to `count` distinct) and the questions they answer."""
    by_id = {p.doc_id: p for p in corpus}
    chosen: dict[str, Passage] = {}
    for q in questions:
        for d in q.gold_doc_ids:
            if d in by_id and len(chosen) < count:
                chosen.setdefault(d, by_id[d])
    return list(chosen.values()), [q for q in questions if set(q.gold_doc_ids) & set(chosen)]


def holdout_eval(corpus: Sequence[Passage], train: Sequence[Question], test: Sequence[Question], params, holdout: int,
                 folder: Path, k: int = 5, steps: int = 50, lr: float = 5e-3, old_limit: int = 200) -> dict:
    """Train without `holdout` passages (the gold passages of test questions), add them with `memory add`, and
    report routing recall@k and evidence ROUGE-L on their questions beside retention on the old passages' questions."""
    held, new_questions = gold_slice(corpus, test, holdout)
    held_ids = {p.doc_id for p in held}
    kept = [p for p in corpus if p.doc_id not in held_ids]
    old_questions = [q for q in test if not set(q.gold_doc_ids) & held_ids][:old_limit]
    system, report = MemorySystem.fit(params, kept, train, folder)
    before = routing_recall(system, old_questions, k)
    added = add_passages(system, held, steps=steps, lr=lr, seed=params.seed)
    return {
        "holdout_passages": len(held), "new_questions": len(new_questions), "old_questions": len(old_questions),
        "train_steps": report.steps, "train_s": report.seconds,
        f"new_recall@{k}": routing_recall(system, new_questions, k),
        "new_evidence_rougeL": evidence_rouge(system, new_questions),
        f"old_recall@{k}_before_add": before,
        f"old_recall@{k}_after_add": routing_recall(system, old_questions, k),
        "new_loss_before": sum(added.loss_before) / len(held), "new_loss_after": sum(added.loss_after) / len(held),
    }


def tokenizer_study(corpus: Sequence[Passage], train: Sequence[Question], params, folder: Path,
                    passages: int = 100, steps: int = 60) -> list[dict]:
    """Train the tiny base once per tokenizer choice on the same slice and compare what matters here:
    tokens per passage (cost), seconds per step, evidence bits per character (comparable across vocabularies),
    routing recall@5 and evidence ROUGE-L on the slice's (trained) questions."""
    import math

    from .config import TOKENIZERS
    from .system import passage_text

    chosen, questions = gold_slice(corpus, train, passages)
    rows = []
    for choice in TOKENIZERS:
        settings = params.replace(tokenizer=choice, max_train_steps=steps)
        system, report = MemorySystem.fit(settings, chosen, questions, folder / choice, progress=False)
        tok = system.tokenizer
        evidence = [" ".join(q.gold_evidence) for q in questions if q.gold_evidence]
        tokens_per_char = sum(len(tok(" " + e, add_special_tokens=False)["input_ids"]) for e in evidence) / sum(len(e) for e in evidence)
        rows.append({
            "tokenizer": choice, "vocab": len(tok), "hidden": system.model.proj.out_features,
            "tokens_per_passage": sum(len(tok(passage_text(p), add_special_tokens=False)["input_ids"]) for p in chosen) / len(chosen),
            "s_per_step": report.seconds / max(1, report.steps),
            "final_gen_loss": report.history[-1]["gen_loss"],
            "evidence_bits_per_char": report.history[-1]["gen_loss"] * tokens_per_char / math.log(2),
            "recall@5": routing_recall(system, questions, 5),
            "evidence_rougeL": evidence_rouge(system, questions[:64]),
        })
    return rows

"""Measuring a memory outside a run: routing recall and evidence quality on a set of questions, and the hold-out write test."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from rag_bench.api import Passage, Question, RagBenchError, rouge_l

from .checkpoint import corpus_fingerprint, read_card
from .config import WRITE_LR, WRITE_STEPS
from .generation import generate, route
from . import routing_check
from .system import MemorySystem
from .write import add_passages

BATCH = 32


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def routing_hits(system: MemorySystem, questions: Sequence[Question], k: int) -> list[float]:
    """Per question, 1.0 when its gold passage is among the top-k routed z_i, else 0.0."""
    return routing_check.routing_hits(system.model, system.tokenizer, system.params, questions, system.doc_ids, (k,))[k]


def routing_recall(system: MemorySystem, questions: Sequence[Question], k: int) -> float:
    """Share of questions whose gold passage is among the top-k routed z_i."""
    return _mean(routing_hits(system, questions, k))


def evidence_scores(system: MemorySystem, questions: Sequence[Question]) -> list[float]:
    """Per question with gold evidence, ROUGE-L of the top-1 generated evidence against it."""
    scores = []
    for start in range(0, len(questions), BATCH):
        batch = questions[start : start + BATCH]
        routed = route(system.model, system.tokenizer, [q.text for q in batch], 1, system.params)
        texts = generate(system.model, system.tokenizer, [q.text for q in batch], routed.positions, system.params)
        scores += [rouge_l(t[0], " ".join(q.gold_evidence)) for q, t in zip(batch, texts) if q.gold_evidence]
    return scores


def evidence_rouge(system: MemorySystem, questions: Sequence[Question]) -> float:
    """Mean ROUGE-L of the top-1 generated evidence against the gold evidence."""
    return _mean(evidence_scores(system, questions))


def gold_slice(corpus: Sequence[Passage], questions: Sequence[Question], count: int) -> tuple[list[Passage], list[Question]]:
    """The gold passages of the first questions (up to `count` distinct) and the questions they answer."""
    by_id = {p.doc_id: p for p in corpus}
    chosen: dict[str, Passage] = {}
    for q in questions:
        for d in q.gold_doc_ids:
            if d in by_id and len(chosen) < count:
                chosen.setdefault(d, by_id[d])
    return list(chosen.values()), [q for q in questions if set(q.gold_doc_ids) & set(chosen)]


@dataclasses.dataclass
class Holdout:
    """The write test's split of a task: passages held out of training and the rest, with the questions on each side."""

    held: list[Passage]
    kept: list[Passage]
    new_questions: list[Question]
    old_questions: list[Question]


def holdout_split(corpus: Sequence[Passage], test: Sequence[Question], holdout: int, old_limit: int) -> Holdout:
    """Hold out the gold passages of the first test questions (`holdout` distinct); old questions are (up to
    `old_limit`) test questions that need none of them."""
    held, new_questions = gold_slice(corpus, test, holdout)
    held_ids = {p.doc_id for p in held}
    kept = [p for p in corpus if p.doc_id not in held_ids]
    old_questions = [q for q in test if not set(q.gold_doc_ids) & held_ids][:old_limit]
    return Holdout(held, kept, new_questions, old_questions)


def fit_or_load(params, passages: Sequence[Passage], questions: Sequence[Question], folder: Path) -> tuple[MemorySystem, dict]:
    """The memory of `passages` in `folder`: loaded when a finished one with these settings is there, else trained
    (an interrupted training there resumes). Returns it with train_steps, train_s and memory_reused."""
    card = read_card(folder)
    if card is None:
        system, report = MemorySystem.fit(params, passages, questions, folder)
        return system, {"train_steps": report.steps, "train_s": report.seconds, "memory_reused": False}
    if card.get("added") or card["corpus_fingerprint"] != corpus_fingerprint(passages):
        raise RagBenchError(f"llm_memory: {folder} holds a memory of other passages than this hold-out split; "
                            "give another output folder or delete that one")
    system = MemorySystem.load(folder, {p.doc_id: p for p in passages}, runtime=params)
    differ = [f.name for f in dataclasses.fields(params) if getattr(system.params, f.name) != getattr(params, f.name)]
    if differ:
        raise RagBenchError(f"llm_memory: {folder} holds a memory trained with other settings ({', '.join(differ)}); "
                            "give another output folder or the same -P settings")
    trained = card.get("train", {})
    return system, {"train_steps": trained.get("steps"), "train_s": trained.get("seconds"), "memory_reused": True}


def holdout_eval(corpus: Sequence[Passage], train: Sequence[Question], test: Sequence[Question], params, holdout: int,
                 folder: Path, k: int = 5, steps: int = WRITE_STEPS, lr: float = WRITE_LR, old_limit: int = 200) -> dict:
    """Train without `holdout` passages (the gold passages of test questions), add them with `memory add`, and
    report routing recall@k and evidence ROUGE-L on their questions beside retention on the old passages' questions."""
    split = holdout_split(corpus, test, holdout, old_limit)
    system, trained = fit_or_load(params, split.kept, train, folder)
    before = routing_recall(system, split.old_questions, k)
    added = add_passages(system, split.held, steps=steps, lr=lr, seed=params.seed)
    held = len(split.held)
    return {
        "holdout_passages": held, "new_questions": len(split.new_questions), "old_questions": len(split.old_questions),
        **trained,
        f"new_recall@{k}": routing_recall(system, split.new_questions, k),
        "new_evidence_rougeL": evidence_rouge(system, split.new_questions),
        f"old_recall@{k}_before_add": before,
        f"old_recall@{k}_after_add": routing_recall(system, split.old_questions, k),
        "new_loss_before": sum(added.loss_before) / held, "new_loss_after": sum(added.loss_after) / held,
    }


def tokenizer_study(corpus: Sequence[Passage], train: Sequence[Question], params, folder: Path,
                    passages: int = 100, steps: int = 60) -> list[dict]:
    """Train the tiny base once per tokenizer choice on the same slice and compare what matters here:
    tokens per passage (cost), seconds per step, evidence bits per character (comparable across vocabularies),
    routing recall@5 and evidence ROUGE-L on the slice's (trained) questions."""
    import math

    from .config import TOKENIZERS
    from .storage import passage_text

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

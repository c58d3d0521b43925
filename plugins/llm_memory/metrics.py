"""Metrics of generated evidence and of memory use, computed for llm_memory runs only.

- `unsupported_share`: share of the word tokens of the generated evidence
  (lower-cased ``\\w+``) that do not occur in the passage it was routed to,
  pooled over a question's evidence texts; `unsupported_share@1` for the top one.
- `z_usage_entropy@1` / `z_usage_entropy@k`: entropy of how often each z_i is
  routed to (top-1, or any of the top k) over the run's questions, divided by
  its maximum, log(min(N, uses)): 1 is even use, 0 is collapse onto one z_i.
  `z_distinct@1` is the share of questions whose top-1 z_i no other question got first.
- the controls (controls.py says what each is), for the questions whose record
  carries them (the provider's `control_every`): `control.<c>.evidence_rougeL`
  and `control.<c>.answer_recall@k` of each control's evidence (`text_store`,
  `no_lm_readout`, `closed_book`, `hard_shuffle`, `shuffled_z`, `zeroed_z`,
  `query_swap`), and of the question itself as the evidence (`question_echo`,
  every question); and `delta.<c>.<metric>`, llm_memory minus that control on
  the same questions, whose bootstrap interval is a paired one (the harness
  resamples questions). `answer_recall@k` is only scored at depths the
  evidence reaches (query_swap has rank 1 only). `control.query_swap.unchanged`
  is 1.0 for a question whose rank-1 evidence stays identical when another
  question's text is put in with the same z, else 0.0: its mean is the share
  of evidence the question does not change.
- training figures from the memory's checkpoint card when the run trained it, and its storage beside the text it
  stands for: `z_bytes_per_passage`, `text_bytes_per_passage` and their ratio `z_to_text_bytes` (storage.py).
- `control.routing_init.recall@k` / `delta.routing_init.recall@k`: the untrained
  memory's routing of the same question (the memory keeps it: routing_check), and
  trained minus untrained, paired; absent for memories that kept none.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from rag_bench.api import Aggregate, Metric, Question, RunContext, has_answer, recall_at, rouge_l

from .storage import storage_ratio, z_bytes_per_passage

PROVIDER = "llm_memory"
ECHO = "question_echo"
#: The control that puts another question in with the same z (its verdict per question in provider info).
QUERY_SWAP = "query_swap"
#: The untrained memory's routing of the same question (routing_check): trained minus untrained recall, paired.
ROUTING_INIT = "routing_init"
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def unsupported(evidence: str, passage_words: set[str]) -> tuple[int, int]:
    """(tokens not in the passage, tokens) of one evidence text."""
    tokens = words(evidence)
    return sum(t not in passage_words for t in tokens), len(tokens)



class LLMMemoryMetric(Metric):
    """unsupported_share(@1), z_usage_entropy@1/@k, z_distinct@1 and training figures of llm_memory runs."""

    description = "unsupported_share, z_usage_entropy, train_s (llm_memory runs)"
    #: Wall seconds of training measure the machine: kept with the measurements, never compared by verify.
    measurements = ("train_s",)

    def score_one(self, record: dict[str, Any], question: Question, ctx: RunContext) -> dict[str, float]:
        if ctx.provider != PROVIDER or not record["evidence"]:
            return {}
        by_id = ctx.task.passages_by_id
        counts = []
        for (doc_id, _), text in zip(record["hits"], record["evidence"]):
            passage = by_id.get(doc_id)
            source = set(words(f"{passage.title} {passage.text}")) if passage else set()
            counts.append(unsupported(text, source))
        out: dict[str, float] = {}
        total = sum(n for _, n in counts)
        if total:
            out["unsupported_share"] = sum(u for u, _ in counts) / total
        if counts and counts[0][1]:
            out["unsupported_share@1"] = counts[0][0] / counts[0][1]
        out.update(control_scores(record, question, ctx.ks))
        return out

    def run_level(self, records: Sequence[dict[str, Any]], ctx: RunContext) -> dict[str, Aggregate]:
        if ctx.provider != PROVIDER:
            return {}
        n = len(records)
        top1 = Counter(r["hits"][0][0] for r in records if r["hits"])
        topk = Counter(doc_id for r in records for doc_id, _ in r["hits"])
        out = {
            "z_usage_entropy@1": Aggregate(self._entropy(top1, ctx), None, n),
            f"z_usage_entropy@{ctx.ks[-1]}": Aggregate(self._entropy(topk, ctx), None, n),
            "z_distinct@1": Aggregate(sum(1 for c in top1.values() if c == 1) / max(1, n), None, n),
        }
        out.update(self._training(ctx))
        return out

    @staticmethod
    def _entropy(counts: Counter, ctx: RunContext) -> float:
        total = sum(counts.values())
        slots = min(total, ctx.efficiency.get("num_passages") or total)
        if slots <= 1:
            return 0.0
        h = -sum(c / total * math.log(c / total) for c in counts.values())
        return h / math.log(slots)

    @staticmethod
    def _training(ctx: RunContext) -> dict[str, Aggregate]:
        workdir = (ctx.efficiency.get("first_session") or {}).get("workdir")
        card_path = Path(workdir) / "memory" / "memory.json" if workdir else None
        if card_path is None or not card_path.is_file():
            return {}
        card = json.loads(card_path.read_text(encoding="utf-8"))
        train = card.get("train") or {}
        out = {name: Aggregate(float(value), None, 1) for name, value in
               storage_ratio(z_bytes_per_passage(card["settings"]), list(ctx.task.corpus)).items() if value is not None}
        if "seconds" in train:
            out["train_s"] = Aggregate(float(train["seconds"]), None, 1)
            out["train_steps"] = Aggregate(float(train["steps"]), None, 1)
        history = train.get("history") or []
        if history:
            for key in ("gen_loss", "route_loss", "usage_entropy"):
                out[f"train_first_{key}"] = Aggregate(float(history[0][key]), None, 1)
                out[f"train_final_{key}"] = Aggregate(float(history[-1][key]), None, 1)
        return out


def evidence_scores(texts: Sequence[str], question: Question, ks: Sequence[int]) -> dict[str, float]:
    """evidence_rougeL of the top text and answer_recall@k at the depths the texts reach, as the core metrics score them."""
    out: dict[str, float] = {}
    if question.gold_evidence and texts:
        out["evidence_rougeL"] = rouge_l(texts[0], " ".join(question.gold_evidence))
    if question.answers:
        first = next((i for i, text in enumerate(texts) if has_answer(text, question.answers)), None)
        for k in ks:
            if k <= len(texts):
                out[f"answer_recall@{k}"] = float(first is not None and first < k)
    return out


def control_scores(record: dict[str, Any], question: Question, ks: Sequence[int]) -> dict[str, float]:
    """Per question: each control's scores and llm_memory minus them (question_echo for every question, the
    generated controls where the record carries them), and whether the query swap left the evidence unchanged."""
    texts = list(record["evidence"])
    main = evidence_scores(texts, question, ks)
    controls = {ECHO: [question.text] * len(texts), **((record.get("provider_info") or {}).get("controls") or {})}
    out: dict[str, float] = {}
    for name, control_texts in controls.items():
        for metric, value in evidence_scores(control_texts, question, ks).items():
            if metric in main:
                out[f"control.{name}.{metric}"] = value
                out[f"delta.{name}.{metric}"] = main[metric] - value
    initial = (record.get("provider_info") or {}).get("routing_init")
    if initial is not None:
        trained = [doc_id for doc_id, _ in record["hits"]]
        gold = set(question.gold_doc_ids)
        for k in ks:
            if gold and k <= len(initial):
                before, after = recall_at(initial, gold, k), recall_at(trained, gold, k)
                out[f"control.{ROUTING_INIT}.recall@{k}"] = before
                out[f"delta.{ROUTING_INIT}.recall@{k}"] = after - before
    swap = (record.get("provider_info") or {}).get("query_swap")
    if swap is not None:
        out[f"control.{QUERY_SWAP}.unchanged"] = float(bool(swap["unchanged"]))
    return out

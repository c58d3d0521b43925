"""Routing against where it started: the dev recall curve of a training run, and the untrained routing kept beside the
trained one so every run can compare the two on the same questions.

Before any training the routing is the base encoder's query states against keys initialised from its passage states
(under ``key_init=retriever``: for minilm, a dense retriever kept inside the LM). Training moves keys, heads and the
LM's adapters; whether that helps or hurts routing is measured, not assumed:

- `RoutingCurve`: recall@1/@5 on the dev questions before the first step and every `eval_every` steps, written
  into the memory's card (``train.routing_curve``) and kept across a resumed training. It is also the early
  stopping: the trainable state at the curve's best point (recall@1, then recall@5; ties go to the later point) is
  kept and restored when training ends past it, and after `early_stop_patience` points without a better one training
  ends early;
- `save_initial` / `InitialRouting`: the untrained keys and query head, stored beside the memory
  (``routing_init.safetensors``, evaluation only: not counted as memory), and the untrained LM's query read
  (LoRA adapters switched off), so a run ranks each question both ways (``routing_init`` in the record).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from rag_bench.api import Question, write_json_atomic

INITIAL = "routing_init.safetensors"
CURVE = "routing_curve.json"
BEST = "routing_best.safetensors"
BATCH = 32  # as evaluation's routing figures, which call routing_hits too


@contextlib.contextmanager
def adapters_off(lm):
    """The base LM with its LoRA adapters switched off (peft tuner layers), restored on exit."""
    layers = [m for m in lm.modules() if hasattr(m, "enable_adapters") and hasattr(m, "lora_A")]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def comparable(params) -> bool:
    """Whether the untrained routing can be recomputed after training: only when the base's own weights stay as
    loaded (LoRA), not when the whole LM was fine-tuned."""
    return params.use_lora


@torch.no_grad()
def initial_state(model) -> dict[str, torch.Tensor]:
    """What the untrained routing needs beside the base LM: every key and the query head, as they start."""
    return {"keys": model.keys().float().cpu().contiguous(),
            "query_weight": model.route_query.weight.detach().float().cpu().contiguous(),
            "query_bias": model.route_query.bias.detach().float().cpu().contiguous()}


def save_initial(folder: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (INITIAL + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(folder / INITIAL)


def load_initial(folder: Path) -> dict[str, torch.Tensor] | None:
    path = folder / INITIAL
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    return load_file(str(path))


class InitialRouting:
    """The routing of the untrained memory: the base LM's query read (adapters off), the untrained query head, the
    untrained keys. `top(model, q_ids, q_mask, k)` ranks queries as it would have before training."""

    def __init__(self, state: dict[str, torch.Tensor], device):
        self.keys = state["keys"].to(device)
        self.weight = state["query_weight"].to(device)
        self.bias = state["query_bias"].to(device)

    @torch.no_grad()
    def top(self, model, q_ids: torch.Tensor, q_mask: torch.Tensor, k: int) -> torch.Tensor:
        with adapters_off(model.lm):
            hidden = model.query_hidden(q_ids, q_mask).float()
        queries = F.normalize(F.linear(hidden, self.weight, self.bias), dim=-1)
        return (queries @ self.keys.T).topk(min(k, self.keys.shape[0]), dim=-1).indices.cpu()


@torch.no_grad()
def routing_hits(model, tokenizer, params, questions: Sequence[Question], doc_ids: Sequence[str],
                 ks: Sequence[int]) -> dict[int, list[float]]:
    """Per k, per question: 1.0 when a gold passage is among the top-k routed z_i, else 0.0."""
    from .generation import route

    hits: dict[int, list[float]] = {k: [] for k in ks}
    for start in range(0, len(questions), BATCH):
        batch = questions[start : start + BATCH]
        top = route(model, tokenizer, [q.text for q in batch], max(ks), params).positions.tolist()
        for q, row in zip(batch, top):
            gold = set(q.gold_doc_ids)
            for k in ks:
                hits[k].append(float(any(doc_ids[i] in gold for i in row[:k])))
    return hits


def recall(model, tokenizer, params, questions: Sequence[Question], doc_ids: Sequence[str],
           ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Share of `questions` with a gold passage among the top-k routed z_i, for each k."""
    hits = routing_hits(model, tokenizer, params, questions, doc_ids, ks)
    return {f"recall@{k}": sum(hits[k]) / max(1, len(questions)) for k in ks}


class RoutingCurve:
    """Dev routing recall before training and every `every` optimiser steps, kept in `state_dir/routing_curve.json`
    so a resumed training keeps its earlier points; the trainable state at the best point so far is kept in
    `state_dir/routing_best.safetensors` (early stopping: `restore_best`, `should_stop`)."""

    def __init__(self, tokenizer, params, questions: Sequence[Question], doc_ids: Sequence[str], state_dir: Path):
        self.tokenizer, self.params = tokenizer, params
        self.questions = [q for q in questions if set(q.gold_doc_ids) & set(doc_ids)]
        self.doc_ids = list(doc_ids)
        self.path = state_dir / CURVE
        self.best_path = state_dir / BEST
        self.points: list[dict] = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else []
        self.restored_from: int | None = None

    def measure(self, step: int, model) -> None:
        if not self.questions or any(p["step"] == step for p in self.points):
            return
        was_training = model.training
        model.eval()
        self.points.append({"step": step, **recall(model, self.tokenizer, self.params, self.questions, self.doc_ids)})
        model.train(was_training)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.best()["step"] == step:  # written before the curve, so a kill between the two leaves no stale best
            from .checkpoint import write_weights

            write_weights(model, self.params, self.best_path)
        write_json_atomic(self.path, self.points)

    def on_step(self, step: int, model) -> None:
        if step % self.params.eval_every == 0:
            self.measure(step, model)

    def best(self) -> dict:
        """The best point so far: highest recall@1, then recall@5; of equal points the later."""
        return max(reversed(self.points), key=lambda p: (p["recall@1"], p["recall@5"]))

    def should_stop(self) -> bool:
        """Whether the last `early_stop_patience` points brought no better one (never when patience is 0)."""
        patience = self.params.early_stop_patience
        if not patience or not self.points:
            return False
        best = self.best()["step"]
        return sum(p["step"] > best for p in self.points) >= patience

    def restore_best(self, model) -> None:
        """Load the best point's trainable state into `model` when training went on past it (the early stop)."""
        if not self.points or not self.best_path.is_file():
            return
        best = self.best()
        if best["step"] != self.points[-1]["step"]:
            from .checkpoint import read_weights

            read_weights(model, self.best_path)
            self.restored_from = best["step"]

    def summary(self) -> dict:
        """The card's entry: every point, the questions it is measured on, and the start against the end."""
        if not self.points:
            return {}
        first, last = self.points[0], self.points[-1]
        best = self.best()
        return {"questions": len(self.questions), "split": sorted({q.split for q in self.questions}),
                "points": self.points, "start": first, "end": last, "best": best,
                "kept_step": best["step"] if self.restored_from is not None else last["step"],
                "restored": self.restored_from is not None}

"""Training the extractive reader: cached by a fingerprint, resumable mid-epoch, deterministic on CPU.

The learning rate warms up linearly over `warmup_steps` and then stays
constant, so the weights after epoch e do not depend on how many epochs were
asked for: `epoch-<e>.safetensors` is kept for every finished epoch, a run
asking for more epochs continues from the last one, and a dev sweep over
`epochs` trains once. `checkpoint.pt` (model, optimiser, scheduler, RNG state
and position in the epoch) is rewritten every `checkpoint_every` steps, so a
killed training resumes where it stopped and ends with the same weights.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from rag_bench.api import write_json_atomic

from .model import SpanReaderModel, Window, collate

CHECKPOINT = "checkpoint.pt"
NEG = -1e4


def epoch_weights(workdir: Path, epoch: int) -> Path:
    return workdir / f"epoch-{epoch}.safetensors"


def span_loss(logits: torch.Tensor, gold: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """-log of the probability mass on the gold positions, over the passage tokens (per row)."""
    logits = logits.masked_fill(~context, NEG)
    return torch.logsumexp(logits, -1) - torch.logsumexp(logits.masked_fill(~gold, NEG), -1)


def batch_loss(model: SpanReaderModel, windows: Sequence[Window], pad_id: int, frozen: int | None = None,
               lower: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Span loss over the positive windows plus the passage (relevance) loss over all of them.

    With `frozen` set, `lower` holds each window's hidden states after the
    embeddings and the `frozen` lowest layers (computed once, `encode_lower`) and only the layers above run.
    """
    inputs = collate(windows, pad_id)
    context = inputs.pop("context")
    if frozen is not None:
        hidden = torch.zeros(len(windows), context.shape[1], lower[0].shape[-1])
        for row, h in enumerate(lower):
            hidden[row, : h.shape[0]] = h
        start, end, relevance = model.upper(frozen, hidden, inputs["attention_mask"])
    else:
        start, end, relevance = model(**inputs)
    positive = torch.tensor([w.positive for w in windows])
    labels = torch.zeros_like(relevance)
    labels[positive] = 1.0
    loss = torch.nn.functional.binary_cross_entropy_with_logits(relevance, labels)
    if positive.any():
        gold_start = torch.zeros_like(context)
        gold_end = torch.zeros_like(context)
        for row, w in enumerate(windows):
            gold_start[row, list(w.starts)] = bool(w.starts)
            gold_end[row, list(w.ends)] = bool(w.ends)
        rows = positive.nonzero().squeeze(-1)
        loss = loss + 0.5 * (span_loss(start[rows], gold_start[rows], context[rows])
                             + span_loss(end[rows], gold_end[rows], context[rows])).mean()
    return loss


def encode_lower(model: SpanReaderModel, examples: Sequence[Window], pad_id: int, frozen: int, batch_size: int = 64,
                 progress: bool = True) -> list[torch.Tensor]:
    """Each window's hidden states after the embeddings and the `frozen` lowest layers (unpadded, in order)."""
    out: list[torch.Tensor | None] = [None] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].input_ids), i))
    model.eval()
    for lo in tqdm(range(0, len(order), batch_size), desc="extractive reader: encoding", unit="batch", disable=not progress):
        rows = order[lo : lo + batch_size]
        inputs = collate([examples[i] for i in rows], pad_id)
        inputs.pop("context")
        hidden = model.lower(frozen, **inputs)
        for j, i in enumerate(rows):
            out[i] = hidden[j, : len(examples[i].input_ids)].clone()
    return out  # type: ignore[return-value]


def epoch_batches(examples: Sequence[Window], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's batches: a seeded shuffle, sorted by length within pools of 50 batches (little padding), batches shuffled."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(len(examples), generator=generator).tolist()
    pool = 50 * batch_size
    batches = []
    for lo in range(0, len(order), pool):
        chunk = sorted(order[lo : lo + pool], key=lambda i: (len(examples[i].input_ids), i))
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _save_atomic(save: Callable[[Path], None], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save(tmp)
    os.replace(tmp, path)


def train(model: SpanReaderModel, examples: Sequence[Window], pad_id: int, workdir: Path, *, epochs: int, lr: float,
          batch_size: int, warmup_steps: int, seed: int, frozen: int | None = None, checkpoint_every: int = 200,
          info: dict[str, Any] | None = None, progress: bool = True) -> Path:
    """Train `model` in place up to `epochs` (continuing from what `workdir` holds); the last epoch's weights file.

    `frozen` (None: every weight is trained) keeps the embeddings and that many lowest layers fixed: their
    outputs are computed once and only the layers above and the heads are trained (a few times cheaper per
    epoch on a CPU)."""
    from safetensors.torch import load_file, save_file

    final = epoch_weights(workdir, epochs)
    if final.is_file():
        model.load_state_dict(load_file(str(final)))
        return final
    steps_per_epoch = (len(examples) + batch_size - 1) // batch_size
    if steps_per_epoch == 0:
        raise ValueError("no training examples: no train question has its answer in a gold passage")
    if frozen is not None:
        model.encoder.embeddings.requires_grad_(False)
        for layer in model.layers()[:frozen]:
            layer.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup_steps)))
    epoch, position = 0, 0
    state_path = workdir / CHECKPOINT
    if state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        if state["epoch"] < epochs or (state["epoch"] == epochs and state["position"] == 0):
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            epoch, position = state["epoch"], state["position"]
    if epoch == 0 and position == 0:
        torch.manual_seed(seed)

    def checkpoint(epoch: int, position: int) -> None:
        state = {"epoch": epoch, "position": position, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()}
        _save_atomic(lambda p: torch.save(state, p), state_path)

    lower = encode_lower(model, examples, pad_id, frozen, progress=progress) if frozen is not None else None
    model.train()
    bar = tqdm(total=epochs * steps_per_epoch, initial=epoch * steps_per_epoch + position, unit="step",
               desc="extractive reader: training", disable=not progress)
    while epoch < epochs:
        batches = epoch_batches(examples, batch_size, seed, epoch)
        started = time.perf_counter()
        losses = []
        for step in range(position, steps_per_epoch):
            rows = batches[step]
            loss = batch_loss(model, [examples[i] for i in rows], pad_id, frozen, [lower[i] for i in rows] if lower else None)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
            if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps_per_epoch:
                checkpoint(epoch, step + 1)
        epoch, position = epoch + 1, 0
        _save_atomic(lambda p: save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(p)),
                     epoch_weights(workdir, epoch))
        write_json_atomic(workdir / f"epoch-{epoch}.json", {**(info or {}), "epoch": epoch, "steps": steps_per_epoch,
                                                            "mean_loss": sum(losses) / max(1, len(losses)),
                                                            "seconds": round(time.perf_counter() - started, 1)})
        checkpoint(epoch, 0)
    bar.close()
    model.eval()
    return final

"""The write path: memorise new passages by optimising a fresh z_new each, with θ, projection and routing heads frozen."""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from rag_bench.api import Passage, RagBenchError

from .config import WRITE_LR, WRITE_STEPS
from .content_init import content_z
from .data import Collator, encode_evidence, encode_queries, pseudo_queries, window_words
from .system import MemorySystem


@dataclass
class AddReport:
    """Per new passage, before and after optimising z_new: the write objective (evidence loss + routing loss of its
    indexing examples, what the write path minimises) and the evidence loss alone."""

    doc_ids: list[str]
    loss_before: list[float]
    loss_after: list[float]
    gen_loss_before: list[float]
    gen_loss_after: list[float]
    steps: int


@dataclass
class WritePoint:
    """The write path's state after `steps` Adam steps: z_new (detached, optimisation continues from it), the mean
    write objective and evidence loss over the new passages, and the optimisation seconds spent so far."""

    steps: int
    z_new: torch.Tensor
    loss: float
    gen_loss: float
    seconds: float


class NewPassageBatch:
    """The indexing examples of the new passages, tokenised once."""

    def __init__(self, system: MemorySystem, passages: Sequence[Passage], seed: int):
        params = system.params
        rng = random.Random(seed)
        words = window_words(params.max_evidence_tokens)
        rows = [(local, q, ev) for local, p in enumerate(passages)
                for q, ev, _ in pseudo_queries(p, max(params.pseudo_queries, 1), rng, params.evidence_target, words)]
        self.local = torch.tensor([r[0] for r in rows])
        tok = system.tokenizer
        batch = Collator(tok.pad_token_id, 0).pad(encode_queries(tok, [r[1] for r in rows], params.max_query_tokens),
                                                   encode_evidence(tok, [r[2] for r in rows], params.max_evidence_tokens))
        device = system.model.z.device
        self.q_ids, self.q_mask, self.e_ids, self.e_mask = (t.to(device) for t in batch)
        self.local = self.local.to(device)
        self.count = len(passages)

    def losses(self, model, z_new: torch.Tensor, query: torch.Tensor, old_keys: torch.Tensor,
               route_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(write objective, evidence loss) per example: routing is scored against every old key and the new ones."""
        out = model.sequence(self.q_ids, self.q_mask, z_new[self.local], self.e_ids, self.e_mask)
        start = model.prefix_length(self.q_ids.shape[1]) - 1
        gen = model.evidence_loss(out.last_hidden_state, self.e_ids, self.e_mask.float(), start, reduce=False)
        new_keys = model.key_of(z_new)
        scores = model.route_scores(query, torch.cat([old_keys, new_keys]))
        route = F.cross_entropy(scores, old_keys.shape[0] + self.local, reduction="none")
        return gen + route_weight * route, gen

    def per_passage(self, losses: torch.Tensor) -> list[float]:
        sums = torch.zeros(self.count, device=losses.device).index_add_(0, self.local, losses.detach().float())
        counts = torch.bincount(self.local, minlength=self.count).clamp(min=1)
        return (sums / counts).tolist()


def add_passages(system: MemorySystem, passages: Sequence[Passage], steps: int = WRITE_STEPS, lr: float = WRITE_LR,
                 seed: int = 0, checkpoints: Sequence[int] = (),
                 on_checkpoint: Callable[[WritePoint], None] | None = None, progress: bool = True) -> AddReport:
    """Append one optimised z_new per passage to Z; nothing else in the model changes.

    z_new starts from the passage's content (least-squares inverse of the
    trained projection) and is trained with Adam on the same two losses as
    training: generating the passage's evidence from its pseudo-queries, and
    routing those pseudo-queries to z_new against every existing z_i.

    `on_checkpoint` is called after each step count in `checkpoints` (0 is the
    content initialisation) with a `WritePoint`; it may evaluate the memory
    (see `appended`) but must not change z_new. Adam at a constant rate makes
    the state after N steps of this run the state of a fresh N-step run.
    Each step is one full batch over every new passage's indexing examples; `progress` shows a bar over the steps.
    """
    if not passages:
        raise RagBenchError("memory add: no passages given")
    known = set(system.doc_ids)
    clash = [p.doc_id for p in passages if p.doc_id in known]
    if clash or len({p.doc_id for p in passages}) != len(passages):
        raise RagBenchError(f"memory add: doc_id {clash[0] if clash else 'duplicated'} is already in the memory; give new passages unique ids")
    if steps < 0 or lr <= 0:
        raise RagBenchError("memory add: --steps must be >= 0 and --lr > 0")
    if any(c < 0 or c > steps for c in checkpoints):
        raise RagBenchError(f"memory add: checkpoints must lie between 0 and --steps ({steps}); got {sorted(checkpoints)}")
    model = system.model
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)
    model.eval()
    batch = NewPassageBatch(system, passages, seed)
    z_new = content_z(model, system.tokenizer, passages).to(model.z.device).requires_grad_(True)
    with torch.no_grad():
        old_keys = model.keys()
        query = model.query_hidden(batch.q_ids, batch.q_mask)
    objective = lambda: batch.losses(model, z_new, query, old_keys, system.params.route_weight)  # noqa: E731
    checkpoints = set(checkpoints)

    def measure(step: int, seconds: float) -> list[list[float]]:
        with torch.no_grad():
            losses = [batch.per_passage(t) for t in objective()]
        if on_checkpoint is not None and step in checkpoints:
            on_checkpoint(WritePoint(step, z_new.detach(), sum(losses[0]) / len(passages),
                                     sum(losses[1]) / len(passages), seconds))
        return losses

    before = measure(0, 0.0)
    optimizer = torch.optim.Adam([z_new], lr=lr)
    seconds = 0.0
    bar = tqdm(total=steps, desc=f"llm_memory write ({len(passages)} passages)", unit="step",
               disable=not progress or steps == 0)
    for step in range(1, steps + 1):
        start = time.perf_counter()
        loss = objective()[0].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - start
        bar.update(1)
        if step in checkpoints and step < steps:
            measure(step, seconds)
    bar.close()
    after = measure(steps, seconds) if steps else before
    _append(system, passages, z_new)
    for name, p in model.named_parameters():
        p.requires_grad_(flags[name])
    system.card.setdefault("added", []).append({"passages": [[p.doc_id, p.title, p.text] for p in passages],
                                                "steps": steps, "lr": lr})
    return AddReport([p.doc_id for p in passages], before[0], after[0], before[1], after[1], steps)


def _append(system: MemorySystem, passages: Sequence[Passage], z_new: torch.Tensor) -> None:
    model = system.model
    with torch.no_grad():
        model.z.data = torch.cat([model.z.data, z_new.detach().to(model.z.dtype)])
    system.passages = list(system.passages) + list(passages)


@contextlib.contextmanager
def appended(system: MemorySystem, passages: Sequence[Passage], z_new: torch.Tensor) -> Iterator[MemorySystem]:
    """`system` with `z_new` and `passages` appended inside the block (to evaluate a write in progress); Z and the
    passage list are restored on exit, whatever happens inside."""
    z, kept = system.model.z.data, system.passages
    _append(system, passages, z_new)
    try:
        yield system
    finally:
        system.model.z.data, system.passages = z, kept

"""The write path: memorise new passages by optimising a fresh z_new each, with θ, projection and routing heads frozen."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from rag_bench.errors import RagBenchError
from rag_bench.types import Passage

from .content_init import content_z
from .data import Collator, encode_evidence, encode_queries, pseudo_queries
from .system import MemorySystem, passage_text

DEFAULT_STEPS = 50
DEFAULT_LR = 5e-3


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


class NewPassageBatch:
    """The indexing examples of the new passages, tokenised once."""

    def __init__(self, system: MemorySystem, passages: Sequence[Passage], seed: int):
        params = system.params
        rng = random.Random(seed)
        rows = [(local, q, ev) for local, p in enumerate(passages) for q, ev, _ in pseudo_queries(p, max(params.pseudo_queries, 1), rng)]
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
        start = self.q_ids.shape[1] + model.m_tokens - 1
        gen = model.evidence_loss(out.last_hidden_state, self.e_ids, self.e_mask.float(), start, reduce=False)
        new_keys = F.normalize(model.route_key(z_new.mean(1)), dim=-1)
        scores = model.route_scores(query, torch.cat([old_keys, new_keys]))
        route = F.cross_entropy(scores, old_keys.shape[0] + self.local, reduction="none")
        return gen + route_weight * route, gen

    def per_passage(self, losses: torch.Tensor) -> list[float]:
        sums = torch.zeros(self.count, device=losses.device).index_add_(0, self.local, losses.detach().float())
        counts = torch.bincount(self.local, minlength=self.count).clamp(min=1)
        return (sums / counts).tolist()


def add_passages(system: MemorySystem, passages: Sequence[Passage], steps: int = DEFAULT_STEPS, lr: float = DEFAULT_LR,
                 seed: int = 0) -> AddReport:
    """Append one optimised z_new per passage to Z; nothing else in the model changes.

    z_new starts from the passage's content (least-squares inverse of the
    trained projection) and is trained with Adam on the same two losses as
    training: generating the passage's evidence from its pseudo-queries, and
    routing those pseudo-queries to z_new against every existing z_i.
    """
    if not passages:
        raise RagBenchError("memory add: no passages given")
    known = set(system.doc_ids)
    clash = [p.doc_id for p in passages if p.doc_id in known]
    if clash or len({p.doc_id for p in passages}) != len(passages):
        raise RagBenchError(f"memory add: doc_id {clash[0] if clash else 'duplicated'} is already in the memory; give new passages unique ids")
    if steps < 0 or lr <= 0:
        raise RagBenchError("memory add: --steps must be >= 0 and --lr > 0")
    model = system.model
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)
    model.eval()
    batch = NewPassageBatch(system, passages, seed)
    z_new = content_z(model, system.tokenizer, [passage_text(p) for p in passages]).to(model.z.device).requires_grad_(True)
    with torch.no_grad():
        old_keys = model.keys()
        query = model.query_hidden(batch.q_ids, batch.q_mask)
    objective = lambda: batch.losses(model, z_new, query, old_keys, system.params.route_weight)  # noqa: E731
    with torch.no_grad():
        before = [batch.per_passage(t) for t in objective()]
    optimizer = torch.optim.Adam([z_new], lr=lr)
    for _ in range(steps):
        loss = objective()[0].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = [batch.per_passage(t) for t in objective()]
        model.z.data = torch.cat([model.z.data, z_new.detach().to(model.z.dtype)])
    for name, p in model.named_parameters():
        p.requires_grad_(flags[name])
    system.passages = list(system.passages) + list(passages)
    system.card.setdefault("added", []).append({"passages": [[p.doc_id, p.title, p.text] for p in passages],
                                                "steps": steps, "lr": lr})
    return AddReport([p.doc_id for p in passages], before[0], after[0], before[1], after[1], steps)

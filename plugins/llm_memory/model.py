"""The memory model: base LM θ, memory table Z, a shared projection z_dim -> hidden, and routing heads.

One sequence per example, ``[query tokens ; proj(z_i) (m_tokens slots) ; evidence tokens]``.
The query comes first so that, under causal attention, its hidden states do
not depend on z: the routing read (the LM's pooled hidden state of the query
scored against keys derived from every z_i) and the generation loss
``-log P(evidence | query, proj(z_i))`` come out of one forward pass.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import screen
from .base import head_parts, lm_parts

#: Vocabulary columns per block of the CPU decoding head (`decode_logits`): measured fastest of 512-4096 here.
LOGIT_BLOCK = 512


class MemoryModel(nn.Module):
    """θ + Z + projection + routing heads; `forward` returns the training losses."""

    def __init__(self, lm, num_passages: int, params):
        super().__init__()
        hidden = lm.get_input_embeddings().weight.shape[1]
        self.lm = lm
        self.find_parts()
        #: The body's KV-cache argument: `cache` from transformers 5.24 (`past_key_values` warns there, gone in 5.40).
        self.cache_keyword = "cache" if "cache" in inspect.signature(self.body.forward).parameters else "past_key_values"
        self.params = params
        self.m_tokens = params.m_tokens
        #: The token that closes the memory prefix under key+tokens (set from the tokenizer by MemorySystem).
        self.read_token = 0
        #: Whether CPU decoding chooses tokens through the head's int8 screen (`screened_head`); off, it takes the
        #: blocked fp32 product (the same ids; benchmarks compare the two).
        self.screen_decoding = True
        self.z = nn.Parameter(torch.zeros(num_passages, params.m_tokens, params.z_dim))
        self.proj = nn.Linear(params.z_dim, hidden)
        self.route_query = nn.Linear(hidden, params.route_dim)
        self.route_key = nn.Linear(params.z_dim, params.route_dim)
        device = lm.get_input_embeddings().weight.device
        self.proj.to(device)
        self.route_query.to(device)
        self.route_key.to(device)
        self.z.data = self.z.data.to(device)

    def find_parts(self) -> None:
        """Read the body and head out of `self.lm` (again after its modules were replaced in place, as the int8
        inference copy does); kept in tuples, so they are not registered twice as submodules."""
        self._parts = lm_parts(self.lm)
        self._head_parts = head_parts(self.lm)

    # -- pieces -------------------------------------------------------------
    @property
    def body(self) -> nn.Module:
        """The base's transformer body (it takes `inputs_embeds`)."""
        return self._parts[0]

    @property
    def head(self) -> nn.Module:
        """The base's head from hidden states to vocabulary logits."""
        return self._parts[1]

    @property
    def lm_dtype(self) -> torch.dtype:
        return self.lm.get_input_embeddings().weight.dtype

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm.get_input_embeddings()(ids)

    def memory_embeds(self, z: torch.Tensor) -> torch.Tensor:
        """proj(z): (..., m, z_dim) -> (..., m, hidden) in the LM's dtype; under ``closed_book`` every z is withheld
        (zeros, whatever memory is routed or handed in), in training and in generation alike."""
        if self.params.closed_book:
            z = torch.zeros_like(z)
        return self.proj(z).to(self.lm_dtype)

    def key_of(self, z: torch.Tensor) -> torch.Tensor:
        """Unit-norm routing keys of memories z (..., m, z_dim), derived from z itself: its key slot (slot 0) under
        ``z_layout=key+states|key+tokens``, the mean over its slots under ``pooled``."""
        source = z[..., 0, :] if self.params.has_key_slot else z.mean(-2)
        return F.normalize(self.route_key(source), dim=-1)

    def keys(self) -> torch.Tensor:
        """One unit-norm routing key per z_i."""
        return self.key_of(self.z)

    def route_queries(self, query_hidden: torch.Tensor) -> torch.Tensor:
        """Unit-norm routing vectors of pooled query states: a query's score against z_i is its inner product with
        z_i's key, over the temperature."""
        return F.normalize(self.route_query(query_hidden.float()), dim=-1)

    def route_scores(self, query_hidden: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
        """Cosine scores / temperature of each query against every key: (B, N)."""
        return self.route_queries(query_hidden) @ (self.keys() if keys is None else keys).T / self.params.route_temperature

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The routing read of left-padded queries: mean over real tokens, or the last token."""
        if self.params.route_pool == "last":
            return hidden[:, -1]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)

    def run(self, embeds: torch.Tensor, mask: torch.Tensor, cache=None, positions=None, use_cache: bool = False):
        """The decoder over embeddings, with position ids that skip left padding."""
        if positions is None:
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.body(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                         **{self.cache_keyword: cache}, use_cache=use_cache,
                         output_hidden_states=self.params.routing_layer >= 0)

    def kv_cache(self, out):
        """The KV cache a body call returned (`out.cache` from transformers 5.24, `out.past_key_values` before)."""
        return out.cache if self.cache_keyword == "cache" else out.past_key_values

    def routing_states(self, out, length: int) -> torch.Tensor:
        """Hidden states of the first `length` positions (the query) at the routing layer: ``hidden_states[L]`` is
        the output of transformer layer L (0: the input embeddings), -1 the last layer's output."""
        layer = self.params.routing_layer
        if layer < 0:
            states = out.last_hidden_state
        else:
            if layer >= len(out.hidden_states):
                raise ValueError(f"route_layer={layer} but the base has {len(out.hidden_states) - 1} layers")
            states = out.hidden_states[layer]
        return states[:, :length]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits (fp32) of hidden states, through the base's own head."""
        return self.head(hidden).float()

    def cpu_fp32_head(self, block: int):
        """The head as (before its vocabulary projection, that projection) when the projection is an fp32
        `nn.Linear` on CPU over more than `block` ids, which the decoding's faster heads need; else None (CUDA, a
        quantised or bf16 head)."""
        before, projection = self._head_parts
        weight = getattr(projection, "weight", None)
        if (not isinstance(projection, nn.Linear) or weight is None or weight.device.type != "cpu"
                or weight.dtype != torch.float32 or weight.shape[0] <= block):
            return None
        return before, projection

    def decode_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The values of `logits`, with the vocabulary projection of an fp32 head on CPU computed in blocks of
        `LOGIT_BLOCK` columns.

        A block's weights stay in cache while every row is multiplied by them: 1.4-1.7x faster than one product
        over the whole vocabulary on this machine's 2 cores, and bit-identical there (each logit is the same dot
        product; the decoding tests compare token ids with the reference path, which uses `logits`). Elsewhere
        (CUDA, a quantised or bf16 head) it is `logits`.
        """
        parts = self.cpu_fp32_head(LOGIT_BLOCK)
        if parts is None:
            return self.logits(hidden)
        before, projection = parts
        x, weight, bias = before(hidden), projection.weight, projection.bias
        return torch.cat([F.linear(x, weight[lo : lo + LOGIT_BLOCK], None if bias is None else bias[lo : lo + LOGIT_BLOCK])
                          for lo in range(0, weight.shape[0], LOGIT_BLOCK)], -1)

    def screened_head(self):
        """The int8-screened greedy choice of this model's head (`screen.ScreenedHead`: the reference's token ids
        at a fraction of the vocabulary product's cost) for decoding on CPU with an fp32 projection, made anew
        when the head's weights change; None where it does not apply (CUDA, a quantised head, no int8 product
        in this torch)."""
        parts = self.cpu_fp32_head(screen.BLOCK) if self.screen_decoding else None
        if parts is None or not screen.available():
            return None
        before, projection = parts
        version = tuple(tensor_version(t) for t in (projection.weight, projection.bias) if t is not None)
        if getattr(self, "_screened", (None, None))[0] != version:
            self._screened = (version, screen.ScreenedHead(before, projection))
        return self._screened[1]

    def routing_read(self, out, q_mask: torch.Tensor) -> torch.Tensor:
        """The routing read from a body call whose sequence starts with the queries (mask `q_mask`): their pooled
        hidden state at the routing layer."""
        return self.pool(self.routing_states(out, q_mask.shape[1]), q_mask)

    def query_hidden(self, q_ids: torch.Tensor, q_mask: torch.Tensor) -> torch.Tensor:
        """The pooled hidden state of the queries alone (no memory): the routing read."""
        return self.routing_read(self.run(self.embed(q_ids), q_mask), q_mask)

    # -- training -----------------------------------------------------------
    def evidence_loss(self, hidden: torch.Tensor, e_ids: torch.Tensor, e_mask: torch.Tensor, start: int,
                      reduce: bool = True) -> torch.Tensor:
        """Cross-entropy of evidence tokens predicted from positions start.. (per example when not `reduce`)."""
        length = e_ids.shape[1]
        logits = self.logits(hidden[:, start : start + length])
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), e_ids.reshape(-1), reduction="none")
        losses = losses.view_as(e_ids) * e_mask
        if reduce:
            return losses.sum() / e_mask.sum().clamp(min=1)
        return losses.sum(1) / e_mask.sum(1).clamp(min=1)

    @property
    def aligned(self) -> bool:
        """Whether memory slots hold tokens (``z_layout=key+tokens``): then the evidence replays their positions."""
        return self.params.z_layout == "key+tokens"

    def prefix_length(self, query_length: int) -> int:
        """Positions before the first evidence token: query, m_tokens slots, and the read token when aligned."""
        return query_length + self.m_tokens + int(self.aligned)

    def prefix(self, q_ids, q_mask, z):
        """Embeddings, mask and position ids of ``[query ; proj(z) (; read token)]``, and each row's first evidence position.

        Under ``key+tokens`` slot t >= 1 holds the passage's token t-1 and sits at
        position L+t (L: the query's length). A read token closes the prefix at
        the key slot's position L, and evidence token j is placed at position
        L+1+j, the position of the slot that holds the passage's token j: the
        token predicting token j sits one position before the slot that holds it,
        the relation a pretrained LM's previous/next-token attention already
        tracks, so copying from z is easy to learn. Otherwise (``pooled``) the
        positions simply run on.
        """
        q_pos = (q_mask.long().cumsum(-1) - 1).clamp(min=0)
        embeds, positions, first = self.memory_part(q_mask, z)
        mask = torch.cat([q_mask, torch.ones(embeds.shape[:2], dtype=q_mask.dtype, device=q_mask.device)], 1)
        return torch.cat([self.embed(q_ids), embeds], 1), mask, torch.cat([q_pos, positions], 1), first

    def memory_part(self, q_mask, z):
        """Embeddings and position ids of the part of the prefix after the query (``proj(z) (; read token)``) for
        queries with mask `q_mask`, and each row's first evidence position (see `prefix`)."""
        batch, device = q_mask.shape[0], q_mask.device
        length = q_mask.long().sum(-1, keepdim=True)
        parts = [self.memory_embeds(z)]
        positions = [length + torch.arange(self.m_tokens, device=device)]
        if self.aligned:
            parts.append(self.embed(torch.full((batch, 1), self.read_token, dtype=torch.long, device=device)))
            positions.append(length)
            first = length + 1
        else:
            first = length + self.m_tokens
        return torch.cat(parts, 1), torch.cat(positions, 1), first

    def sequence(self, q_ids, q_mask, z, e_ids, e_mask):
        """The decoder over [query ; proj(z) (; read token) ; evidence] (left-padded query, right-padded evidence)."""
        embeds, mask, positions, first = self.prefix(q_ids, q_mask, z)
        e_pos = first + torch.arange(e_ids.shape[1], device=e_ids.device)
        embeds = torch.cat([embeds, self.embed(e_ids)], 1)
        return self.run(embeds, torch.cat([mask, e_mask], 1), positions=torch.cat([positions, e_pos], 1))

    def forward(self, q_ids, q_mask, e_ids, e_mask, doc, negatives):
        out = self.sequence(q_ids, q_mask, self.z[doc], e_ids, e_mask)
        hidden = out.last_hidden_state
        start = self.prefix_length(q_ids.shape[1]) - 1
        gen_loss = self.evidence_loss(hidden, e_ids, e_mask.float(), start)
        scores = self.route_scores(self.routing_read(out, q_mask))
        route_loss = routing_loss(scores, doc, negatives, self.params.route_negatives)
        balance = balance_loss(scores)
        loss = gen_loss + self.params.route_weight * route_loss + self.params.balance_weight * balance
        return {"loss": loss, "gen_loss": gen_loss.detach(), "route_loss": route_loss.detach(),
                "top1": scores.detach().argmax(-1)}


def tensor_version(tensor: torch.Tensor) -> tuple:
    """What tells whether `tensor` changed in place: its storage and version counter; for an inference tensor (made
    under `torch.inference_mode`, which keeps no counter) its storage and a strided sample of its values."""
    if tensor.is_inference():
        return tensor.data_ptr(), float(tensor.detach().reshape(-1)[::997].double().sum())
    return tensor.data_ptr(), tensor._version


def routing_loss(scores: torch.Tensor, doc: torch.Tensor, negatives: torch.Tensor, mode: str) -> torch.Tensor:
    """Contrastive loss over Z: each query against the batch's positives and BM25 hard negatives (or all of Z)."""
    if mode == "all":
        return F.cross_entropy(scores, doc)
    candidates = torch.unique(torch.cat([doc, negatives[negatives >= 0]]))
    target = torch.searchsorted(candidates, doc)
    return F.cross_entropy(scores[:, candidates], target)


def balance_loss(scores: torch.Tensor) -> torch.Tensor:
    """KL(mean routing distribution || uniform) / log N: a load-balancing term against collapse onto few z_i."""
    mean = scores.softmax(-1).mean(0)
    n = scores.shape[-1]
    return (mean * (mean.clamp(min=1e-12).log() + math.log(n))).sum() / math.log(n)


def usage_entropy(counts: torch.Tensor) -> float:
    """Entropy of a usage histogram over Z, divided by its maximum (1 = even use, 0 = collapse)."""
    total = counts.sum()
    used = counts[counts > 0].float() / total
    if total <= 1:
        return 0.0
    return float(-(used * used.log()).sum() / math.log(min(counts.numel(), int(total))))

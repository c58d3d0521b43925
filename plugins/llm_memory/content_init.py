"""z_i from the passage's content, not noise, in one of three layouts (`z_layout`).

- ``key+states`` (the design's layout): slot 0 holds the passage's pooled hidden
  state (the routing key: for a BERT base, the bidirectional encoder's
  mean-pooled last layer, the sentence embedding the checkpoint was trained to
  produce; for a decoder, its own mean-pooled last layer), and slots 1..m-1
  the same encoder's last-layer states of the passage's first 256 tokens,
  mean-pooled over m-1 consecutive chunks: a lossy summary of the whole
  passage (about 8 tokens a slot on nq_5k), not its text. The LM must learn
  to read the evidence out of it, and z trains from there.
- ``pooled``: the passage's first 256 tokens cut into m_tokens consecutive
  chunks, the input embeddings of each chunk mean-pooled.
- ``key+tokens`` ("text in embedding form", a named ablation): slot 0 as above,
  slots 1..m-1 the input embeddings of the passage's first m-1 tokens, the
  same tokens the `opening` target starts with: a copy of the text.

``key_init=random`` replaces the key slot's start by a random vector (keys learned from the routing loss alone, no
retriever initialisation). Every vector is rescaled to the mean norm of the token embeddings, then mapped to z_dim by
a fixed basis D (hidden -> z_dim); the projection starts as Dᵀ, so proj(z_i) starts as the content itself.
"""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from rag_bench.api import Passage

from .storage import passage_text

CONTENT_TOKENS = 256
STATE_BATCH = 32


def opening_ids(tokenizer, passages: Sequence[Passage], count: int) -> list[list[int]]:
    """The first `count` token ids of each passage's text, tokenised exactly as an evidence target starts."""
    rows = tokenizer([" " + p.text for p in passages], add_special_tokens=False, truncation=True, max_length=count)["input_ids"]
    return [row or [tokenizer.eos_token_id] for row in rows]


def token_table(model) -> torch.Tensor:
    return model.lm.get_input_embeddings().weight.detach().float()


def rescale(vectors: torch.Tensor, norm: torch.Tensor | float) -> torch.Tensor:
    return vectors * (norm / vectors.norm(dim=-1, keepdim=True).clamp(min=1e-6))


def pooled_chunks(model, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """(N, m_tokens, hidden): each passage's tokens cut into m_tokens chunks, each chunk mean-pooled and rescaled to
    the mean norm of the token embeddings it averages."""
    m = model.m_tokens
    table = token_table(model)
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=CONTENT_TOKENS)["input_ids"]
    out = []
    for ids in encoded:
        ids = ids or [tokenizer.eos_token_id]
        vectors = table[torch.tensor(ids, device=table.device)]
        chunks = [vectors[i * len(ids) // m : max((i + 1) * len(ids) // m, i * len(ids) // m + 1)] for i in range(m)]
        out.append(torch.stack([rescale(c.mean(0), c.norm(dim=-1).mean()) for c in chunks]))
    return torch.stack(out)


def _encoder_for_states(model):
    """The network whose mean-pooled last layer is a passage's state: BERT's own bidirectional encoder (loaded from
    the same checkpoint), else the base's causal body."""
    from .base import base_path, family

    params = model.params
    if family(model.lm) == "bert" and not params.is_tiny:
        from transformers import AutoModel

        return AutoModel.from_pretrained(base_path(params)).to(model.z.device).eval()
    return model.body


def chunk_means(hidden: torch.Tensor, length: int, chunks: int) -> torch.Tensor:
    """(chunks, hidden): the first `length` rows of `hidden` cut into `chunks` consecutive runs (at least one row
    each, repeating the last rows when there are fewer rows than chunks), each mean-pooled."""
    bounds = [(i * length // chunks, max((i + 1) * length // chunks, i * length // chunks + 1)) for i in range(chunks)]
    return torch.stack([hidden[min(lo, length - 1) : min(hi, length)].mean(0) for lo, hi in bounds])


@torch.no_grad()
def encoder_states(model, tokenizer, texts: Sequence[str], chunks: int = 0) -> torch.Tensor:
    """(N, 1 + chunks, hidden): the mean-pooled last hidden state of each passage (first 256 tokens), then (with
    `chunks`) the same states mean-pooled over `chunks` consecutive runs of its tokens; in length-sorted batches."""
    encoder = _encoder_for_states(model)
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=CONTENT_TOKENS)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    device = model.z.device
    out = torch.empty(len(encoded), 1 + chunks, token_table(model).shape[1])
    embed = model.lm.get_input_embeddings()
    starts = range(0, len(order), STATE_BATCH)
    for start in tqdm(starts, desc="llm_memory passage states", unit="batch", disable=len(starts) < 10):
        batch = order[start : start + STATE_BATCH]
        rows = [encoded[i] for i in batch]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        if encoder is model.body:
            hidden = encoder(inputs_embeds=embed(ids), attention_mask=mask).last_hidden_state
        else:
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden = hidden.float()
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        out[torch.tensor(batch), 0] = ((hidden * weights).sum(1) / weights.sum(1).clamp(min=1)).cpu()
        for row, i in enumerate(batch):
            if chunks:
                out[i, 1:] = chunk_means(hidden[row], len(rows[row]), chunks).cpu()
    return out.to(device)


def passage_states(model, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """(N, hidden): the mean-pooled last hidden state of each passage (first 256 tokens)."""
    return encoder_states(model, tokenizer, texts)[:, 0]


def random_keys(count: int, hidden: int, seed: int) -> torch.Tensor:
    """(count, hidden) seeded Gaussian vectors: key slots with no retriever initialisation (``key_init=random``)."""
    return torch.randn(count, hidden, generator=torch.Generator().manual_seed(seed))


def content_vectors(model, tokenizer, passages: Sequence[Passage]) -> torch.Tensor:
    """(N, m_tokens, hidden): what each z_i holds before the map to z_dim, in the model's layout."""
    params = model.params
    texts = [passage_text(p) for p in passages]
    if params.z_layout == "pooled":
        return pooled_chunks(model, tokenizer, texts)
    table = token_table(model)
    norm = table.norm(dim=-1).mean()
    slots = model.m_tokens - 1
    if params.z_layout == "key+states":
        content = rescale(encoder_states(model, tokenizer, texts, slots), norm)
    else:
        key = rescale(passage_states(model, tokenizer, texts), norm)
        ids = opening_ids(tokenizer, passages, slots)
        tokens = torch.zeros(len(passages), slots, table.shape[1], device=table.device)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = table[torch.tensor(seq, device=table.device)]
            tokens[row, len(seq):] = table[tokenizer.pad_token_id]
        content = torch.cat([key[:, None], tokens], 1)
    if params.key_init == "random":
        content[:, 0] = rescale(random_keys(len(passages), table.shape[1], params.seed + 2), norm).to(content.device)
    return content


def orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    """A (rows, cols) matrix with orthonormal columns (rows >= cols) or rows (rows < cols)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(max(rows, cols), min(rows, cols), generator=gen))
    return q if rows >= cols else q.T


def content_basis(content: torch.Tensor, z_dim: int, seed: int) -> torch.Tensor:
    """D (hidden, z_dim): the top principal directions (uncentred) of the content vectors when z_dim < hidden, so
    the map keeps what varies most (tokens stay identifiable, keys keep their neighbours); a fixed orthonormal map
    otherwise. Each layout's slot kinds are weighed equally."""
    hidden = content.shape[-1]
    if z_dim >= hidden:
        return orthonormal(hidden, z_dim, seed)
    groups = [content[:, 0], content[:, 1:].reshape(-1, hidden)] if content.shape[1] > 1 else [content[:, 0]]
    cov = sum(g.T.double() @ g.double() / len(g) for g in groups)
    _, vectors = torch.linalg.eigh(cov)
    return vectors[:, -z_dim:].flip(-1).float()


@torch.no_grad()
def init_memory(model, tokenizer, passages: Sequence[Passage], seed: int) -> None:
    """Z = content · D and proj = Dᵀ, so proj(z_i) ≈ the content; routing heads that compare in the same basis.

    The query head starts as Q·Dᵀ and the key head as Q (Q: route_dim x z_dim with
    orthonormal columns), so the score of a query against z_i starts as the cosine of
    the query's hidden state and z_i's key content, both seen through D.
    """
    content = content_vectors(model, tokenizer, passages).to(model.z.device)
    down = content_basis(content, model.z.shape[-1], seed).to(content.device)
    rotate = orthonormal(model.route_key.weight.shape[0], model.z.shape[-1], seed + 1).to(content.device)
    model.z.data.copy_(content @ down)
    model.proj.weight.data.copy_(down)
    model.proj.bias.data.zero_()
    model.route_query.weight.data.copy_(rotate @ down.T)
    model.route_query.bias.data.zero_()
    model.route_key.weight.data.copy_(rotate)
    model.route_key.bias.data.zero_()


@torch.no_grad()
def content_z(model, tokenizer, passages: Sequence[Passage]) -> torch.Tensor:
    """z for new passages under a trained projection: the least-squares z with proj(z) ≈ their content."""
    content = content_vectors(model, tokenizer, passages).to(model.z.device)
    weight = model.proj.weight.detach().float()
    return (content - model.proj.bias.detach().float()) @ torch.linalg.pinv(weight.T)

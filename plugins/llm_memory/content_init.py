"""z_i from the passage's content: pooled token embeddings, one pool per memory slot, mapped to z_dim."""

from __future__ import annotations

from typing import Sequence

import torch

CONTENT_TOKENS = 256


def pooled_embeddings(model, tokenizer, texts: Sequence[str], batch: int = 256) -> torch.Tensor:
    """(N, m_tokens, hidden): the passage's tokens cut into m_tokens consecutive chunks, each mean-pooled.

    Each pooled vector is rescaled to the mean norm of the token embeddings it
    averages, so that proj(z_i) starts at the scale the LM expects.
    """
    m = model.m_tokens
    table = model.lm.get_input_embeddings().weight.detach().float()
    out = []
    for start in range(0, len(texts), batch):
        encoded = tokenizer(list(texts[start : start + batch]), add_special_tokens=False, truncation=True,
                            max_length=CONTENT_TOKENS)["input_ids"]
        for ids in encoded:
            ids = ids or [tokenizer.eos_token_id]
            vectors = table[torch.tensor(ids, device=table.device)]
            chunks = [vectors[i * len(ids) // m : max((i + 1) * len(ids) // m, i * len(ids) // m + 1)] for i in range(m)]
            pooled = []
            for chunk in chunks:
                mean = chunk.mean(0)
                pooled.append(mean * chunk.norm(dim=-1).mean() / mean.norm().clamp(min=1e-6))
            out.append(torch.stack(pooled))
    return torch.stack(out)


def orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    """A (rows, cols) matrix with orthonormal columns (rows >= cols) or rows (rows < cols)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(max(rows, cols), min(rows, cols), generator=gen))
    return q if rows >= cols else q.T


@torch.no_grad()
def init_memory(model, tokenizer, texts: Sequence[str], seed: int) -> None:
    """Z and the projection start as a fixed orthonormal map and its transpose: proj(z_i) ≈ pooled content.

    The routing heads start aligned the same way (route_key(z) ≈ R·pooled
    content, route_query(h) = R·h), so that a query whose hidden states
    resemble a passage's token embeddings scores that passage high from the
    first step.
    """
    pooled = pooled_embeddings(model, tokenizer, texts)
    hidden, z_dim = pooled.shape[-1], model.z.shape[-1]
    down = orthonormal(hidden, z_dim, seed).to(pooled.device)
    rotate = orthonormal(model.route_query.weight.shape[0], hidden, seed + 1).to(pooled.device)
    model.z.data.copy_(pooled @ down)
    model.proj.weight.data.copy_(down)
    model.proj.bias.data.zero_()
    model.route_query.weight.data.copy_(rotate)
    model.route_query.bias.data.zero_()
    model.route_key.weight.data.copy_(rotate @ down)
    model.route_key.bias.data.zero_()


@torch.no_grad()
def content_z(model, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """z for new passages under a trained projection: the least-squares z with proj(z) ≈ pooled content."""
    pooled = pooled_embeddings(model, tokenizer, texts)
    weight = model.proj.weight.detach().float()
    return (pooled - model.proj.bias.detach().float()) @ torch.linalg.pinv(weight.T)

"""Inference: route a query to its top-k z_i inside the model, then generate one evidence text per routed z_i."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .key_index import EXACT_MAX_KEYS, KeyIndex

from .data import encode_queries, pad_left


@dataclass
class Routed:
    """Top-k passage positions and scores per query, and the time the routing took."""

    positions: torch.Tensor
    scores: torch.Tensor
    seconds: float


def encode(model, tokenizer, queries: list[str], params, repeat: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded query ids and mask on the model's device, each query repeated `repeat` times."""
    rows = encode_queries(tokenizer, queries, params.max_query_tokens)
    ids, mask = pad_left([row for row in rows for _ in range(repeat)], tokenizer.pad_token_id)
    return ids.to(model.z.device), mask.to(model.z.device)


@torch.no_grad()
def route_ids(model, q_ids: torch.Tensor, q_mask: torch.Tensor, k: int) -> Routed:
    """Score every z_i from the LM's own pooled hidden state of the query; keep the top k."""
    start = time.perf_counter()
    scores = model.route_scores(model.query_hidden(q_ids, q_mask))
    top = scores.topk(min(k, scores.shape[-1]), dim=-1)
    return Routed(top.indices.cpu(), top.values.float().cpu(), time.perf_counter() - start)


@torch.no_grad()
def key_index(model, exact_max: int | None = None) -> KeyIndex:
    """The routing keys of a trained memory in a `KeyIndex`: searched exactly up to `exact_max` keys (unset:
    `EXACT_MAX_KEYS`; the top-k of every score, as `route`), through FAISS HNSW above (approximate:
    `KeyIndex.recall` tells how much of the exact top-k it finds)."""
    return KeyIndex(model.keys().float(), threshold=EXACT_MAX_KEYS if exact_max is None else exact_max)


def route(model, tokenizer, queries: list[str], k: int, params) -> Routed:
    start = time.perf_counter()
    routed = route_ids(model, *encode(model, tokenizer, queries, params), k)
    routed.seconds = time.perf_counter() - start
    return routed


def penalise(values: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty on logits of ids already generated: positive ones divided by `penalty`, the others
    multiplied by it."""
    return torch.where(values > 0, values / penalty, values * penalty)


def penalise_repeats(logits: torch.Tensor, generated: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty on the ids each row has generated so far (tiny models otherwise loop on one word),
    applied in place to `logits` and returned.

    Only the generated ids' logits are touched (a gather and a scatter), not the whole vocabulary.
    """
    return logits.scatter_(1, generated, penalise(logits.gather(1, generated), penalty))


def penalise_repeats_dense(logits: torch.Tensor, generated: torch.Tensor, penalty: float) -> torch.Tensor:
    """The same penalty as its definition reads: a mask over the whole vocabulary (the reference decoding)."""
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter(1, generated, True)
    return torch.where(seen, penalise(logits, penalty), logits)


def cache_layers(cache) -> list:
    """The per-layer key/value holders of a decoder's KV cache (the self-attention half of an encoder-decoder
    cache, as BERT-as-decoder keeps on transformers 4.x); empty for a cache kept without layers."""
    return list(getattr(getattr(cache, "self_attention_cache", cache), "layers", []))


def repeat_rows(cache, times: int) -> None:
    """Repeat each row of a KV cache `times` times in place (row i becomes rows i*times .. i*times+times-1)."""
    if times == 1:
        return
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(times)
        return
    for layer in cache_layers(cache):  # caches without the method keep one key/value tensor pair per layer
        layer.keys = layer.keys.repeat_interleave(times, dim=0)
        layer.values = layer.values.repeat_interleave(times, dim=0)


def grow_in_place(cache, extra: int) -> None:
    """Give every layer of a dynamic KV cache room for `extra` more positions, written in place from then on.

    A dynamic layer concatenates each new key and value onto its whole cache (a copy of all of it, per layer, per
    token); here each layer's keys and values move into buffers `extra` positions longer, and its `update` writes
    the new positions there and hands attention views of the filled part. Attention computes bitwise the same
    output from those views (`benchmarks/llm_memory_floor.py --attention` checks it at the decoding's shapes; the
    decoding tests hold the tokens to the reference). Layers of another kind (sliding windows, quantised) keep
    their own update.
    """
    from transformers.cache_utils import DynamicLayer

    for layer in cache_layers(cache):
        if type(layer) is DynamicLayer and getattr(layer, "keys", None) is not None and layer.keys.dim() == 4:
            InPlaceLayer(layer, extra)


class InPlaceLayer:
    """The in-place `update` of one dynamic cache layer (`grow_in_place`): its keys and values are
    ``[:, :, :filled]`` views of (batch, head, position, dim) buffers with room for more positions.

    That layout, not (batch, position, head, dim), keeps each head's keys in one run of memory as a contiguous
    cache does: CPU flash attention over it costs 6.1 ms/question against 9.5 for the concatenated cache (the copy
    included) and 7.6 for the other layout (nq_5k test batches, 2 threads; docs/BENCHMARKS.md).
    """

    def __init__(self, layer, extra: int):
        batch, heads, self.filled, _ = layer.keys.shape
        self.layer = layer
        self.keys = layer.keys.new_empty(batch, heads, self.filled + extra, layer.keys.shape[-1])
        self.values = layer.values.new_empty(batch, heads, self.filled + extra, layer.values.shape[-1])
        self.keys[:, :, : self.filled] = layer.keys
        self.values[:, :, : self.filled] = layer.values
        self.publish()
        layer.update = self.update  # an instance attribute: shadows DynamicLayer.update for this layer only

    def publish(self) -> None:
        self.layer.keys, self.layer.values = self.keys[:, :, : self.filled], self.values[:, :, : self.filled]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self.filled + key_states.shape[-2]
        if end > self.keys.shape[2]:
            raise RuntimeError(f"in-place KV cache: room for {self.keys.shape[2]} positions, {end} asked for")
        self.keys[:, :, self.filled : end] = key_states
        self.values[:, :, self.filled : end] = value_states
        self.filled = end
        self.publish()
        return self.layer.keys, self.layer.values


@torch.no_grad()
def decode(model, out, mask: torch.Tensor, next_pos: torch.Tensor, limit: int, eos: int | None,
           repetition_penalty: float, reference: bool = False) -> list[list[int]]:
    """Greedy decoding from a prefilled prefix (`out` holds its cache and last hidden state; `next_pos` the first
    evidence position of each row), with CTRL's repetition penalty on the ids generated so far.

    `reference`: the definitions as they read (the penalty over the whole vocabulary, the head as one product,
    the cache concatenated at every step). Otherwise the same token ids with less work: the next token chosen
    through the head's int8 screen where it applies (`MemoryModel.screened_head`), else the penalty over the
    generated ids only, in place, and the head in vocabulary blocks (`MemoryModel.decode_logits`); the KV
    cache written in place (`grow_in_place`).
    """
    rows, prefix = mask.shape
    screened = None if reference else model.screened_head()
    penalise_logits = penalise_repeats_dense if reference else penalise_repeats
    head = model.logits if reference else model.decode_logits
    cache = model.kv_cache(out)
    if not reference and limit > 1:
        grow_in_place(cache, limit - 1)
    masks = torch.cat([mask, mask.new_ones(rows, max(limit - 1, 0))], 1)  # step t attends to the prefix and t tokens
    hidden = out.last_hidden_state[:, -1]
    tokens = []
    finished = torch.zeros(rows, dtype=torch.bool, device=mask.device)
    for step in range(limit):
        generated = torch.stack(tokens, 1) if tokens else None
        if screened is not None:
            nxt = screened.choose(hidden, generated, repetition_penalty)
        else:
            logits = head(hidden)
            if repetition_penalty != 1.0 and generated is not None:
                logits = penalise_logits(logits, generated, repetition_penalty)
            nxt = logits.argmax(-1)
        if eos is not None:
            nxt = torch.where(finished, torch.full_like(nxt, eos), nxt)
            finished |= nxt == eos
        tokens.append(nxt)
        if step == limit - 1 or bool(finished.all()):
            break  # the last token's own forward pass would feed nothing
        out = model.run(model.embed(nxt[:, None]), masks[:, : prefix + step + 1], cache=cache, positions=next_pos,
                        use_cache=True)
        next_pos = next_pos + 1
        hidden = out.last_hidden_state[:, -1]
    return torch.stack(tokens, 1).cpu().tolist() if tokens else [[] for _ in range(rows)]


@torch.no_grad()
def generate_ids(model, q_ids: torch.Tensor, q_mask: torch.Tensor, z: torch.Tensor, limit: int,
                 eos: int | None, repetition_penalty: float = 1.0) -> list[list[int]]:
    """The reference decoding: one whole ``[query ; proj(z)]`` prefill per row, then greedy decoding with the
    penalty over the whole vocabulary.

    `z` holds one memory (m_tokens, z_dim) per row of `q_ids`: the routed z_i,
    or a control's (zeroed, another passage's). The loop is written out (KV
    cache, explicit position ids) rather than calling `generate()`, so
    training and inference see identical positions under left padding in every
    transformers version. `eos` None decodes exactly `limit` tokens (benchmarks).
    """
    embeds, mask, position_ids, next_pos = model.prefix(q_ids, q_mask, z.to(q_ids.device))
    out = model.run(embeds, mask, positions=position_ids, use_cache=True)
    return decode(model, out, mask, next_pos, limit, eos, repetition_penalty, reference=True)


def prefill_queries(model, q_ids: torch.Tensor, q_mask: torch.Tensor):
    """The body over the queries alone, keeping their KV cache: the routing read and the generation prefill."""
    return model.run(model.embed(q_ids), q_mask, use_cache=True)


@torch.no_grad()
def generate_shared(model, q_ids: torch.Tensor, q_mask: torch.Tensor, z: torch.Tensor, limit: int,
                    eos: int | None, repetition_penalty: float = 1.0, prefilled=None) -> list[list[int]]:
    """The same decoding as `generate_ids` with the query prefilled once for all the memories it reads.

    `q_ids` has one row per query and `z` k memories per query (rows grouped by
    query). The query comes before z in the sequence, so its keys and values do
    not depend on z: they are computed once and repeated k times, and only
    ``proj(z) (; read token)`` is prefilled per memory. `prefilled` is the
    queries' `prefill_queries` output when routing already ran it (its cache is
    consumed). Same token ids as `generate_ids` (tested).
    """
    k = z.shape[0] // q_ids.shape[0]
    cache = model.kv_cache(prefilled if prefilled is not None else prefill_queries(model, q_ids, q_mask))
    repeat_rows(cache, k)
    q_mask = q_mask.repeat_interleave(k, 0)
    embeds, positions, next_pos = model.memory_part(q_mask, z.to(q_ids.device))
    mask = torch.cat([q_mask, torch.ones(embeds.shape[:2], dtype=q_mask.dtype, device=q_mask.device)], 1)
    out = model.run(embeds, mask, cache=cache, positions=positions, use_cache=True)
    return decode(model, out, mask, next_pos, limit, eos, repetition_penalty)


def texts_of(tokenizer, ids: list[list[int]], k: int) -> list[list[str]]:
    """Generated ids (k rows per query) as k evidence texts per query, each cut at the first end-of-sequence."""
    eos = tokenizer.eos_token_id
    texts = [tokenizer.decode(row[: row.index(eos)] if eos in row else row, skip_special_tokens=True).strip() for row in ids]
    return [texts[i * k : (i + 1) * k] for i in range(len(texts) // k)]


@torch.inference_mode()
def route_and_decode(model, tokenizer, queries: list[str], k: int, depth: int, params,
                     index: KeyIndex | None = None, decoder=None) -> tuple[Routed, list[list[int]], float]:
    """The provider's path: the top-k routing and the generated ids of the top `depth` ranks (depth rows per
    query), with one forward pass over the queries serving both the routing read and the generation prefill.

    `index` holds the keys (`key_index`; made anew from Z when not given). `decoder` (e.g. the int8 inference
    copy, `quantized.int8_inference_copy`) generates from `model`'s query prefill, so the routing stays
    `model`'s. Returns the routing, the ids and the generation's seconds (the routing's are in `Routed.seconds`).
    With an exact index and no other decoder, the same ranking as `route` and the same ids as `generate_ids`
    (tested).
    """
    start = time.perf_counter()
    index = key_index(model) if index is None else index
    q_ids, q_mask = encode(model, tokenizer, queries, params)
    out = prefill_queries(model, q_ids, q_mask)
    positions, scores = index.search(model.route_queries(model.routing_read(out, q_mask)), k)
    scores = scores / model.params.route_temperature
    routed = Routed(positions.cpu(), scores.float().cpu(), time.perf_counter() - start)
    start = time.perf_counter()
    memory = model.z[positions[:, :depth].reshape(-1).to(model.z.device)]
    ids = generate_shared(decoder or model, q_ids, q_mask, memory, params.max_new_tokens, tokenizer.eos_token_id,
                          params.repetition_penalty, prefilled=out)
    return routed, ids, time.perf_counter() - start


def route_and_generate(model, tokenizer, queries: list[str], k: int, depth: int, params,
                       index: KeyIndex | None = None, decoder=None) -> tuple[Routed, list[list[str]], float]:
    """`route_and_decode` with the ids as evidence texts, `min(depth, k)` per query; the seconds after the
    routing's (generation and detokenising)."""
    start = time.perf_counter()
    depth = min(depth, k, len(model.z))
    routed, ids, _ = route_and_decode(model, tokenizer, queries, k, depth, params, index, decoder)
    texts = texts_of(tokenizer, ids, depth)
    return routed, texts, time.perf_counter() - start - routed.seconds


def generate(model, tokenizer, queries: list[str], positions: torch.Tensor, params, max_new_tokens: int | None = None,
             z: torch.Tensor | None = None, shared_prefill: bool = True) -> list[list[str]]:
    """One generated evidence text per (query, routed z_i): a list of `positions.shape[1]` texts per query.

    `z` (one memory per (query, rank), in that order) replaces the routed
    memories: the controls read zeroed or shuffled memories this way.
    `shared_prefill` False takes the reference path (`generate_ids`).
    """
    k = positions.shape[1]
    eos = tokenizer.eos_token_id
    memory = model.z[positions.reshape(-1).to(model.z.device)] if z is None else z
    limit = max_new_tokens or params.max_new_tokens
    if shared_prefill:
        ids = generate_shared(model, *encode(model, tokenizer, queries, params), memory, limit, eos, params.repetition_penalty)
    else:
        ids = generate_ids(model, *encode(model, tokenizer, queries, params, repeat=k), memory, limit, eos, params.repetition_penalty)
    return texts_of(tokenizer, ids, k)

"""The arithmetic floor of exact llm_memory decoding on this machine: the base's matrix products alone.

Exact greedy decoding has to run every product of the base at full width: the
query's pass (routing and the shared prefill), the memory part of the prefix
per (question, memory) row, one body step per generated token but the last,
and the head per generated token: its transform, and the int8 screen of the
vocabulary that chooses the token (`screen.ScreenedHead`: the head's input,
one bias column added, by the vocabulary padded to whole blocks, in int8 with
int32 sums; the few rows it leaves open are re-scored in fp32, left out here).
This script reads those shapes off the default base (`from_pretrained`; LoRA's
adapter layers left out: merged they add no product, unmerged they add work),
takes the padded query lengths of the task's questions in the runner's
batches, and times each product with inputs of its real size. The fp32
vocabulary projection an argmax over every logit needs (in the provider's
blocks, `LOGIT_BLOCK`) is timed beside the sum, not in it.

Everything else the decoding does (attention over the cache, norms,
activations, the penalty, the argmax, Python) is left out, so the sum is a
lower bound on what the exact path costs here: when it exceeds a target, no
rewrite of the decoding around these products meets it on this machine. Beside it, in the
same process, the provider's own path (`route_and_decode`, LoRA adapters
unmerged as the provider runs them) over the same batches, on a trained memory
of the task (`--checkpoint`) or on one of the task's size with untrained
weights (the products' time depends on the shapes only, but on untrained
weights the int8 screen decides fewer rows and more are re-scored in fp32), so
the share of the path spent outside the products is read as a ratio.

The largest cost outside the products is attention over the KV cache at each
generated token. `--attention` times it at the decoding's real shapes (rows,
heads, cache length at each step), cold in cache as it is between the layers'
weight products, for the cache as the provider keeps it (transformers' dynamic
cache: concatenated each step, attention on contiguous keys and values) and
for two in-place caches that skip the concatenation (a preallocated buffer
laid out (batch, head, position, dim) or (batch, position, head, dim), the
attention reading views of its filled part), and checks that all three give
bitwise the same attention output.

    python benchmarks/llm_memory_floor.py --task nq_5k --split test --limit 128 --threads 2 --attention \
        --checkpoint ~/.cache/rag-bench/providers/llm_memory/nq_5k-v1-*/memory
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rag_bench.task_store import load_task
from rag_bench_plugins.llm_memory.base import head_parts, load_base
from rag_bench_plugins.llm_memory.config import LLMMemoryParams
from rag_bench_plugins.llm_memory.data import encode_queries
from rag_bench_plugins.llm_memory.generation import key_index, route_and_decode
from rag_bench_plugins.llm_memory.model import LOGIT_BLOCK, MemoryModel
from rag_bench_plugins.llm_memory.screen import padded_vocabulary
from rag_bench_plugins.llm_memory.system import MemorySystem
from rag_bench_plugins.llm_memory.tokenizer import build_tokenizer, read_token_id


def linear_shapes(module: nn.Module) -> list[tuple[int, int]]:
    """(in, out) of every nn.Linear of the base under `module`, in order (peft's LoRA adapter layers left out)."""
    return [(m.in_features, m.out_features) for name, m in module.named_modules()
            if isinstance(m, nn.Linear) and "lora_" not in name]


def product_ms(rows: int, shape: tuple[int, int], repeats: int, block: int | None = None) -> float:
    """Median ms of one fp32 product of `rows` inputs by a weight of `shape` (in, out), in column blocks when
    `block` is set."""
    fan_in, fan_out = shape
    x, w, b = torch.randn(rows, fan_in), torch.randn(fan_out, fan_in) * 0.05, torch.zeros(fan_out)
    spans = [(0, fan_out)] if block is None else [(lo, min(lo + block, fan_out)) for lo in range(0, fan_out, block)]
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        torch.cat([F.linear(x, w[lo:hi], b[lo:hi]) for lo, hi in spans], -1)
        if i:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def screen_ms(rows: int, shape: tuple[int, int], repeats: int) -> float:
    """Median ms of the int8 screen of `rows` inputs against a vocabulary projection of `shape` (in, out): one bias
    column more, the vocabulary padded to whole screen blocks."""
    fan_in, fan_out = shape
    x = torch.randint(-127, 128, (rows, fan_in + 1), dtype=torch.int8)
    levels = torch.randint(-127, 128, (padded_vocabulary(fan_out), fan_in + 1), dtype=torch.int8)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        torch._int_mm(x, levels.t())
        if i:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def floor(body: list[tuple[int, int]], transform: list[tuple[int, int]], vocabulary: tuple[int, int],
          query_lengths: list[int], batch: int, depth: int, m_slots: int, new_tokens: int, repeats: int) -> dict:
    """Per part of the decoding: MACs per question and ms per question if its products alone ran, measured at
    the batch's real row counts; and, apart, the same for the fp32 vocabulary projection the screen replaces."""
    batches, rows = len(query_lengths), batch * depth
    parts = {
        # (the row count of each product call over all the batches, the shapes each call goes through)
        "query pass (routing + shared prefill)": ([batch * length for length in query_lengths], body),
        "memory prefix (m_tokens + read token per row)": ([rows * m_slots] * batches, body),
        f"body steps ({new_tokens - 1} per row)": ([rows] * (new_tokens - 1) * batches, body),
        f"head transform ({new_tokens} per row)": ([rows] * new_tokens * batches, transform),
    }
    result = {}
    questions = batch * batches
    for name, (row_counts, shapes) in parts.items():
        ms = sum(product_ms(n, shape, repeats) * row_counts.count(n) for n in set(row_counts) for shape in shapes)
        macs = sum(n * i * o for n in row_counts for i, o in shapes)
        result[name] = {"macs_per_question": macs / questions, "ms_per_question": ms / questions}
    steps = new_tokens * batches
    fan_in, fan_out = vocabulary
    result[f"vocabulary screen ({new_tokens} per row, int8)"] = {
        "macs_per_question": rows * steps * (fan_in + 1) * padded_vocabulary(fan_out) / questions,
        "ms_per_question": screen_ms(rows, vocabulary, repeats) * steps / questions}
    fp32 = {"macs_per_question": rows * steps * fan_in * fan_out / questions,
            "ms_per_question": product_ms(rows, vocabulary, repeats, LOGIT_BLOCK) * steps / questions}
    return result, fp32


def memory_name(folder: Path) -> str:
    """A trained memory named without this machine's paths: its cache entry and folder (``nq_5k-v1-…/memory``)."""
    folder = folder.expanduser().resolve()
    return f"{folder.parent.name}/{folder.name}"


def untrained_memory(params, tokenizer, passages: int) -> MemoryModel:
    """The provider's model on the base with untrained LoRA adapters and `passages` random z."""
    model = MemoryModel(load_base(params, tokenizer, params.seed), passages, params)
    model.read_token = read_token_id(tokenizer)
    model.z.data.normal_()
    return model.eval()


def path_ms(model: MemoryModel, tokenizer, queries: list[str], batch: int, depth: int, rounds: int) -> float:
    """Median ms/question of the provider's path (`route_and_decode`) over `queries` in batches."""
    params = model.params
    index = key_index(model)
    times = []
    for i in range(rounds + 1):
        start = time.perf_counter()
        for lo in range(0, len(queries), batch):
            route_and_decode(model, tokenizer, queries[lo : lo + batch], depth, depth, params, index)
        if i:
            times.append((time.perf_counter() - start) * 1000 / len(queries))
    return statistics.median(times)


CACHE_LAYOUTS = ("concatenated", "in place (batch, head, position, dim)", "in place (batch, position, head, dim)")


def attention_ms(rows: int, heads: int, dim: int, prefix: int, steps: int, layers: int, repeats: int) -> dict:
    """Ms of single-token attention over one batch's decoding (`steps` body steps after a `prefix`-long prefill,
    `layers` layers) for each cache layout of `CACHE_LAYOUTS`, the concatenation included where the layout needs
    it, each call timed cold (a 64 MiB write between calls evicts the cache, as the weight products do); and
    whether every layout gave bitwise the same output."""
    flush = torch.empty(16 * 1024 * 1024)
    length = prefix + steps
    keys, values = torch.randn(rows, heads, length, dim), torch.randn(rows, heads, length, dim)
    queries = torch.randn(rows, heads, 1, dim)
    mask = torch.zeros(rows, 1, 1, length)
    mask[::3, :, :, :2] = torch.finfo(torch.float32).min  # left padding on some rows
    by_head = (keys.clone(), values.clone())  # (batch, head, position, dim) buffers
    by_position = (keys.transpose(1, 2).contiguous(), values.transpose(1, 2).contiguous())
    totals, same = dict.fromkeys(CACHE_LAYOUTS, 0.0), True
    for filled in range(prefix + 1, length + 1):
        step_mask = mask[..., :filled]
        outputs = {}
        for layout in CACHE_LAYOUTS:
            times = []
            for i in range(repeats + 1):
                flush.fill_(float(i))
                start = time.perf_counter()
                if layout == CACHE_LAYOUTS[0]:  # what DynamicLayer.update does: the whole cache copied, one position longer
                    k = torch.cat([keys[:, :, : filled - 1], keys[:, :, filled - 1 : filled]], 2)
                    v = torch.cat([values[:, :, : filled - 1], values[:, :, filled - 1 : filled]], 2)
                elif layout == CACHE_LAYOUTS[1]:
                    k, v = by_head[0][:, :, :filled], by_head[1][:, :, :filled]
                else:
                    k, v = by_position[0][:, :filled].transpose(1, 2), by_position[1][:, :filled].transpose(1, 2)
                out = F.scaled_dot_product_attention(queries, k, v, attn_mask=step_mask)
                if i:
                    times.append((time.perf_counter() - start) * 1000)
            totals[layout] += statistics.median(times) * layers
            outputs[layout] = out
        same = same and all(torch.equal(outputs[layout], outputs[CACHE_LAYOUTS[0]]) for layout in CACHE_LAYOUTS)
    return {"ms": totals, "same_output": same}


def attention_floor(model: MemoryModel, query_lengths: list[int], batch: int, depth: int, m_slots: int,
                    new_tokens: int, repeats: int) -> dict:
    """`attention_ms` over every batch of the run, per question, at the base's head count and width."""
    config = model.lm.config
    heads = config.num_attention_heads
    dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    totals, same = dict.fromkeys(CACHE_LAYOUTS, 0.0), True
    for length in query_lengths:
        part = attention_ms(batch * depth, heads, dim, length + m_slots, new_tokens - 1, config.num_hidden_layers,
                            repeats)
        totals = {layout: totals[layout] + part["ms"][layout] for layout in CACHE_LAYOUTS}
        same = same and part["same_output"]
    questions = batch * len(query_lengths)
    return {"ms_per_question": {layout: ms / questions for layout, ms in totals.items()}, "same_output": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=128, help="questions whose padded lengths are taken")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each product (after one untimed)")
    parser.add_argument("--path-rounds", type=int, default=2,
                        help="timed rounds of the provider's path beside the products (0: leave it out)")
    parser.add_argument("--attention", action="store_true",
                        help="also time single-token attention over the cache in each layout of CACHE_LAYOUTS")
    parser.add_argument("--checkpoint", type=Path,
                        help="a trained memory of the task (memory.json) for the provider's path beside the products "
                             "(default: untrained weights, on which the int8 screen decides fewer rows)")
    parser.add_argument("--target-ms", type=float, default=50.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    torch.set_num_threads(args.threads)
    params = LLMMemoryParams()
    task = load_task(args.task)
    tokenizer = build_tokenizer(params, [])
    model = untrained_memory(params, tokenizer, len(task.passages_by_id))
    before, projection = head_parts(model.lm)
    transform = linear_shapes(before) if isinstance(before, nn.Module) else []
    vocabulary = (projection.in_features, projection.out_features)
    queries = [q.text for q in task.split(args.split)[: args.limit]]
    queries = queries[: len(queries) // args.batch_size * args.batch_size]  # whole batches: rows per batch are fixed
    if not queries:
        parser.error(f"--limit {args.limit} holds no whole batch of {args.batch_size} {args.split} questions")
    lengths = [max(len(r) for r in encode_queries(tokenizer, queries[i : i + args.batch_size], params.max_query_tokens))
               for i in range(0, len(queries), args.batch_size)]
    with torch.inference_mode():
        parts, fp32_vocabulary = floor(linear_shapes(model.body), transform, vocabulary, lengths, args.batch_size, args.depth,
                      model.prefix_length(0), params.max_new_tokens, args.repeats)
        if args.checkpoint:
            trained = MemorySystem.load(args.checkpoint, task.passages_by_id)
            path_model, path_tokenizer = trained.model, trained.tokenizer
        else:
            path_model, path_tokenizer = model, tokenizer
        path = (path_ms(path_model, path_tokenizer, queries, args.batch_size, args.depth, args.path_rounds)
                if args.path_rounds else None)
        attention = (attention_floor(model, lengths, args.batch_size, args.depth, model.prefix_length(0),
                                     params.max_new_tokens, args.repeats) if args.attention else None)
    total_ms = sum(p["ms_per_question"] for p in parts.values())
    total_gmacs = sum(p["macs_per_question"] for p in parts.values()) / 1e9
    for name, part in parts.items():
        print(f"{name}: {part['macs_per_question'] / 1e9:.3f} GMAC/question, {part['ms_per_question']:.1f} ms/question "
              f"({2 * part['macs_per_question'] / part['ms_per_question'] / 1e6:.0f} G operations/s)")
    print(f"beside them, not in the sum: the fp32 vocabulary projection (blocks of {LOGIT_BLOCK}) an argmax over "
          f"every logit needs, {fp32_vocabulary['ms_per_question']:.1f} ms/question", flush=True)
    verdict = "above" if total_ms > args.target_ms else "within"
    print(f"products alone: {total_gmacs:.2f} GMAC per question (the screen's int8), {total_ms:.1f} ms/question "
          f"on {args.threads} threads: {verdict} the {args.target_ms:g} ms "
          f"target ({total_ms / args.target_ms:.2f}x), batch {args.batch_size}, depth {args.depth}, "
          f"{params.max_new_tokens} new tokens, {len(queries)} {args.task} {args.split} questions "
          f"(padded query length {statistics.mean(lengths):.1f})", flush=True)
    if path is not None:
        print(f"the provider's path over the same batches ({'trained' if args.checkpoint else 'untrained'} "
              f"weights): {path:.1f} ms/question; its products are {total_ms / path:.2f} of it", flush=True)
    if attention is not None:
        print("single-token attention over the cache, per question: " + "; ".join(
            f"{layout} {ms:.1f} ms" for layout, ms in attention["ms_per_question"].items())
            + f"; bitwise the same output: {attention['same_output']}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({
            "task": args.task, "split": args.split, "questions": len(queries), "batch_size": args.batch_size,
            "depth": args.depth, "threads": args.threads, "max_new_tokens": params.max_new_tokens,
            "padded_query_lengths": lengths, "parts": parts, "total_ms_per_question": total_ms,
            "fp32_vocabulary_projection": fp32_vocabulary,
            "total_gmacs_per_question": total_gmacs, "target_ms": args.target_ms,
            "path_ms_per_question": path, "path_weights": memory_name(args.checkpoint) if args.checkpoint else "untrained",
            "passages": len(task.passages_by_id), "attention": attention,
            "machine": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
        }, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The arithmetic floor of exact llm_memory decoding on this machine: the base's matrix products alone.

Exact greedy decoding has to run every product of the base at full width: the
query's pass (routing and the shared prefill), the memory part of the prefix
per (question, memory) row, one body step per generated token but the last,
and the head (its transform and the whole vocabulary projection, which an
exact argmax needs) per generated token. This script reads those shapes off
the default base (`from_pretrained`; LoRA's adapter layers left out: merged
they add no product, unmerged they add work), takes the padded query lengths of the task's
questions in the runner's batches, and times each product with fp32 inputs of
its real size, the vocabulary in the provider's blocks (`LOGIT_BLOCK`).

Everything else the decoding does (attention over the cache, norms,
activations, the penalty, the argmax, Python) is left out, so the sum is a
lower bound on what any exact fp32 path costs here: when it exceeds a target,
no exact rewrite of the decoding meets it on this machine. Beside it, in the
same process, the provider's own path (`route_and_decode`, LoRA adapters
unmerged as the provider runs them) over the same batches on a memory of the
task's size with untrained weights (its time depends on the shapes, not on
what the weights hold), so the share of the path spent outside the products
is read as a ratio.

    python benchmarks/llm_memory_floor.py --task nq_5k --split test --limit 128 --threads 2
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


def floor(body: list[tuple[int, int]], transform: list[tuple[int, int]], vocabulary: tuple[int, int],
          query_lengths: list[int], batch: int, depth: int, m_slots: int, new_tokens: int, repeats: int) -> dict:
    """Per part of the decoding: MACs per question and ms per question if its products alone ran, measured at
    the batch's real row counts."""
    batches, rows = len(query_lengths), batch * depth
    parts = {
        # (the row count of each product call over all the batches, the shapes each call goes through)
        "query pass (routing + shared prefill)": ([batch * length for length in query_lengths], body),
        "memory prefix (m_tokens + read token per row)": ([rows * m_slots] * batches, body),
        f"body steps ({new_tokens - 1} per row)": ([rows] * (new_tokens - 1) * batches, body),
        f"head transform ({new_tokens} per row)": ([rows] * new_tokens * batches, transform),
        f"vocabulary projection ({new_tokens} per row, blocks of {LOGIT_BLOCK})": ([rows] * new_tokens * batches,
                                                                                 [vocabulary]),
    }
    result = {}
    questions = batch * batches
    for name, (row_counts, shapes) in parts.items():
        block = LOGIT_BLOCK if shapes == [vocabulary] else None
        ms = sum(product_ms(n, shape, repeats, block) * row_counts.count(n) for n in set(row_counts) for shape in shapes)
        macs = sum(n * i * o for n in row_counts for i, o in shapes)
        result[name] = {"macs_per_question": macs / questions, "ms_per_question": ms / questions}
    return result


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
        parts = floor(linear_shapes(model.body), transform, vocabulary, lengths, args.batch_size, args.depth,
                      model.prefix_length(0), params.max_new_tokens, args.repeats)
        path = path_ms(model, tokenizer, queries, args.batch_size, args.depth, args.path_rounds) if args.path_rounds else None
    total_ms = sum(p["ms_per_question"] for p in parts.values())
    total_gmacs = sum(p["macs_per_question"] for p in parts.values()) / 1e9
    for name, part in parts.items():
        print(f"{name}: {part['macs_per_question'] / 1e9:.3f} GMAC/question, {part['ms_per_question']:.1f} ms/question "
              f"({2 * part['macs_per_question'] / part['ms_per_question'] / 1e6:.0f} GFLOP/s)")
    verdict = "above" if total_ms > args.target_ms else "within"
    print(f"products alone: {total_gmacs:.2f} GMAC = {2 * total_gmacs:.2f} GFLOP per question, {total_ms:.1f} ms/question "
          f"on {args.threads} threads ({2 * total_gmacs / total_ms * 1e3:.0f} GFLOP/s): {verdict} the {args.target_ms:g} ms "
          f"target ({total_ms / args.target_ms:.2f}x), batch {args.batch_size}, depth {args.depth}, "
          f"{params.max_new_tokens} new tokens, {len(queries)} {args.task} {args.split} questions "
          f"(padded query length {statistics.mean(lengths):.1f})", flush=True)
    if path is not None:
        print(f"the provider's path over the same batches: {path:.1f} ms/question; its products are "
              f"{total_ms / path:.2f} of it", flush=True)
    if args.out:
        args.out.write_text(json.dumps({
            "task": args.task, "split": args.split, "questions": len(queries), "batch_size": args.batch_size,
            "depth": args.depth, "threads": args.threads, "max_new_tokens": params.max_new_tokens,
            "padded_query_lengths": lengths, "parts": parts, "total_ms_per_question": total_ms,
            "total_gmacs_per_question": total_gmacs, "target_ms": args.target_ms,
            "path_ms_per_question": path, "passages": len(task.passages_by_id),
            "machine": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
        }, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

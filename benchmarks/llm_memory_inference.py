"""llm_memory evidence per question: the reference decoding against the fast path, on the same trained memory.

One process, the same questions in the same batches for both paths, at the
reader depth the provider generates for (``--depth``, 5 by default):

* ``reference`` -- routing (its own pass over the query), then one whole
  ``[query ; proj(z)]`` prefill per (question, memory) row and greedy decoding
  with the repetition penalty over the whole vocabulary (`generation.generate_ids`);
* ``fast``      -- the provider's path (`generation.route_and_generate`): one pass
  over the query serves the routing and the generation prefill, its keys and
  values are shared by the memories it reads, and the penalty touches only the
  generated ids, in place.

The script prints ms/question of each path per thread count, the ratio, and
whether every generated token id matches. Paths take turns in rotating order
over `--rounds` rounds (the first untimed), medians reported: the machine may be
shared, so the ratio, measured side by side, is the figure to read.

    python benchmarks/llm_memory_inference.py --checkpoint ~/.cache/rag-bench/providers/llm_memory/nq_5k-v1-*/memory \
        --task nq_5k --split test --limit 128 --threads 1,2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from rag_bench.task_store import load_task
from rag_bench_plugins.llm_memory.generation import encode, generate_ids, key_index, route_and_decode, route_ids
from rag_bench_plugins.llm_memory.system import MemorySystem


def decode_all(system, queries: list[str], depth: int, batch: int, fast: bool) -> list:
    """Route and generate for every query in batches: the top-`depth` positions and the generated ids (the fast
    path searches the keys indexed once, as the provider does from loading on)."""
    model, tok, params = system.model, system.tokenizer, system.params
    index = key_index(model) if fast else None
    outputs: list = []
    for start in range(0, len(queries), batch):
        chunk = queries[start : start + batch]
        if fast:
            routed, ids, _ = route_and_decode(model, tok, chunk, depth, depth, params, index)
        else:
            q_ids, q_mask = encode(model, tok, chunk, params)
            routed = route_ids(model, q_ids, q_mask, depth)
            memory = model.z[routed.positions.reshape(-1).to(model.z.device)]
            rows = encode(model, tok, chunk, params, repeat=depth)
            ids = generate_ids(model, *rows, memory, params.max_new_tokens, tok.eos_token_id, params.repetition_penalty)
        outputs += [routed.positions.tolist(), ids]
    return outputs


def compare(system, queries: list[str], depth: int, batch: int, rounds: int) -> dict:
    """Both paths in turns (rotating order, the first round untimed): medians in ms/question, and whether they agree."""
    times = {"reference": [], "fast": []}
    outputs = {}
    for round_ in range(rounds + 1):
        for name in (["reference", "fast"] if round_ % 2 == 0 else ["fast", "reference"]):
            start = time.perf_counter()
            outputs[name] = decode_all(system, queries, depth, batch, fast=name == "fast")
            if round_:
                times[name].append((time.perf_counter() - start) * 1000 / len(queries))
    ref, fast = statistics.median(times["reference"]), statistics.median(times["fast"])
    return {"batch_size": batch, "reference_ms_per_question": ref, "fast_ms_per_question": fast, "speedup": ref / fast,
            "identical_tokens": outputs["reference"] == outputs["fast"], "rounds": times}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a trained memory folder (memory.json)")
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=128)
    parser.add_argument("--depth", type=int, default=5, help="memories generated from per question (reader depth)")
    parser.add_argument("--batch-size", default="32", help="questions per provide call, comma-separated to compare")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per path (after one untimed)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    task = load_task(args.task)
    system = MemorySystem.load(args.checkpoint, task.passages_by_id)
    queries = [q.text for q in task.split(args.split)[: args.limit]]
    rows = []
    with torch.inference_mode():
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            for batch in [int(b) for b in args.batch_size.split(",")]:
                rows.append(compare(system, queries, args.depth, batch, args.rounds))
                rows[-1]["threads"] = threads
                row = rows[-1]
                print(f"threads {threads}, batch {batch}: reference {row['reference_ms_per_question']:.1f} ms/question, "
                      f"fast {row['fast_ms_per_question']:.1f} ms/question, {row['speedup']:.2f}x; "
                      f"every routed position and token identical: {row['identical_tokens']}", flush=True)
    result = {"checkpoint": str(args.checkpoint), "task": args.task, "split": args.split, "questions": len(queries),
              "depth": args.depth, "max_new_tokens": system.params.max_new_tokens,
              "base": system.params.base, "machine": platform.platform(), "processor": platform.processor(),
              "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if all(r["identical_tokens"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

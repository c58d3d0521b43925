"""Does storing Z in 16 bits change what a trained memory answers? (issue 27: "Store z in 16 bits where that
changes no output".) Loads a trained llm_memory checkpoint, routes and generates for a split's questions (default
dev: this never touches test) with Z as trained (fp32) and with Z rounded to fp16 and back, and reports the share of
questions whose routing (top-k) and whose evidence texts are identical.

    python benchmarks/llm_memory_fp16_check.py --checkpoint ~/.cache/rag-bench/providers/llm_memory/nq_5k-v1-<key>/memory \\
        --task nq_5k --split dev --out docs/benchmarks/llm_memory_fp16_check.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch


def answer(system, queries, k: int, depth: int, batch: int):
    from rag_bench_plugins.llm_memory.generation import route_and_generate

    tops, texts = [], []
    with torch.inference_mode():
        for start in range(0, len(queries), batch):
            routed, generated, _ = route_and_generate(system.model, system.tokenizer, queries[start:start + batch], k,
                                                      depth, system.params)
            tops += routed.positions.tolist()
            texts += generated
    return tops, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.split == "test":
        parser.error("choose settings on dev: this check does not read the test split")

    from rag_bench.task_store import load_task
    from rag_bench_plugins.llm_memory.system import MemorySystem

    task = load_task(args.task)
    system = MemorySystem.load(args.checkpoint, task.passages_by_id)
    queries = [q.text for q in task.split(args.split)]
    started = time.perf_counter()
    tops32, texts32 = answer(system, queries, args.k, args.k, args.batch_size)
    with torch.no_grad():
        system.model.z.data = system.model.z.data.half().float()
    tops16, texts16 = answer(system, queries, args.k, args.k, args.batch_size)
    same_routing = sum(a == b for a, b in zip(tops32, tops16)) / len(queries)
    same_texts = sum(a == b for a, b in zip(texts32, texts16)) / len(queries)
    same_top1 = sum(a[0] == b[0] for a, b in zip(texts32, texts16)) / len(queries)
    result = {"task": args.task, "split": args.split, "questions": len(queries), "k": args.k,
              "checkpoint_settings": {key: system.card["settings"][key] for key in ("z_layout", "evidence_target", "key_init", "m_tokens", "z_dim")},
              "same_routing_topk": same_routing, "same_all_texts": same_texts, "same_top1_text": same_top1,
              "seconds": round(time.perf_counter() - started, 1), "machine": platform.platform()}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

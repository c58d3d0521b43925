"""Training steps/s of llm_memory: where one step's time goes, and what a setting that keeps the loss curve buys.

Runs the provider's own training loop (`train.train`: accelerate, AdamW, clipping, the real batches of a task's
indexing pseudo-queries and train questions with BM25 negatives) for `--steps` optimiser steps once per variant,
each from the same freshly built system (`MemorySystem.build` on the first `--passages` gold passages, same seed),
in one process and in rotating order over `--rounds` rounds, so the ratio is measured side by side. For every
variant it prints the median seconds per step, the ratio to the first variant, and whether its logged losses and
final weights equal the first variant's (the loss curve is the same curve only if they do). `--profile` prints the
operators of `--profile-steps` steps of the first variant by self CPU time. Run from the repository root::

    python benchmarks/llm_memory_train_step.py --task nq_5k --passages 300 --steps 12 \\
        --variant gradient_checkpointing=true --variant gradient_checkpointing=false --profile
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def run_variant(params, passages, questions, steps: int, profile: bool = False):
    """Train `steps` steps from a fresh system; per-step seconds, the loss log and the final trained weights."""
    from rag_bench_plugins.llm_memory.data import build_examples, encode_examples, hard_negatives
    from rag_bench_plugins.llm_memory.system import MemorySystem
    from rag_bench_plugins.llm_memory.train import train

    params = params.replace(max_train_steps=steps, checkpoint_every=10**9)
    torch.manual_seed(params.seed)
    system = MemorySystem.build(params, passages)
    examples = build_examples(passages, questions, params, params.seed)
    encoded = encode_examples(system.tokenizer, examples, hard_negatives(passages, examples, params.hard_negatives), params)
    stamps = [time.perf_counter()]
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile else None
    with tempfile.TemporaryDirectory() as state, profiler or contextlib.nullcontext():
        report = train(system.model, encoded, params, Path(state), system.tokenizer.pad_token_id, progress=False,
                       on_step=lambda step, model: stamps.append(time.perf_counter()))
    seconds = [b - a for a, b in zip(stamps, stamps[1:])][1:]  # the first step includes setting up the loop
    weights = {n: p.detach().clone() for n, p in system.model.named_parameters() if p.requires_grad}
    return {"seconds": seconds, "history": report.history, "weights": weights, "profiler": profiler}


def main(argv=None) -> int:
    from rag_bench.params import parse_assignments, parse_params
    from rag_bench.task_store import load_task
    from rag_bench_plugins.llm_memory.config import LLMMemoryParams
    from rag_bench_plugins.llm_memory.evaluation import gold_slice

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-P", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of every variant")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="settings of one variant (repeatable; the first is the baseline)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    task = load_task(args.task)
    passages, questions = gold_slice(task.corpus, task.split("train"), args.passages)
    base = parse_assignments(args.settings)
    variants = args.variant or [""]
    params = {v: parse_params(LLMMemoryParams, {**base, **parse_assignments([p for p in v.split(",") if p])},
                              "llm_memory_train_step.py") for v in variants}
    if args.profile:
        profiled = run_variant(params[variants[0]], passages, questions, args.profile_steps + 1, profile=True)
        print(profiled["profiler"].key_averages().table(sort_by="self_cpu_time_total", row_limit=20), flush=True)
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for round_ in range(args.rounds):
        for v in variants[round_ % len(variants):] + variants[: round_ % len(variants)]:
            runs[v].append(run_variant(params[v], passages, questions, args.steps))
            print(f"round {round_ + 1}, {v or 'default'}: {statistics.median(runs[v][-1]['seconds']):.3f} s/step",
                  flush=True)
    first = runs[variants[0]][0]
    rows = []
    for v in variants:
        seconds = [s for run in runs[v] for s in run["seconds"]]
        last = runs[v][0]
        same = last["history"] == first["history"] and all(torch.equal(last["weights"][n], w) for n, w in first["weights"].items())
        rows.append({"variant": v or "default", "s_per_step_median": statistics.median(seconds), "seconds": seconds,
                     "loss_log": last["history"], "same_losses_and_weights_as_first": same})
    for row in rows:
        row["ratio_to_first"] = row["s_per_step_median"] / rows[0]["s_per_step_median"]
        print(f"{row['variant']}: {row['s_per_step_median']:.3f} s/step ({row['ratio_to_first']:.2f}x the first), "
              f"same losses and weights: {row['same_losses_and_weights_as_first']}")
    result = {"task": args.task, "passages": len(passages), "steps": args.steps, "rounds": args.rounds,
              "settings": args.settings, "threads": torch.get_num_threads(), "machine": platform.platform(),
              "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

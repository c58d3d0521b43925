"""What gradient checkpointing saves and costs in one llm_memory training step, on the provider's own model and batches.

For each setting of ``gradient_checkpointing`` (off, on): the bytes autograd keeps for the backward pass of one
training step (every tensor saved for backward, counted through `torch.autograd.graph.saved_tensors_hooks`; the
vocabulary-wide logits at the evidence positions included), and the median seconds of forward + backward over
`--steps` steps, on real training batches of a task (indexing pseudo-queries and train questions). The losses and
gradients of the two settings are checked equal. Run from the repository root::

    python benchmarks/llm_memory_lean.py --task nq_5k --passages 200 [-P base=minilm -P batch_size=32 ...]

It builds the provider's system (`MemorySystem.build`: base through `load_base`, Z from content) on the first
`--passages` passages; on CUDA the step runs under bf16 autocast as training does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def measure(params, passages, questions, steps: int) -> dict:
    from rag_bench_plugins.llm_memory.data import Collator, build_examples, encode_examples, hard_negatives
    from rag_bench_plugins.llm_memory.system import MemorySystem

    system = MemorySystem.build(params, passages)
    examples = build_examples(passages, questions, params, params.seed)
    encoded = encode_examples(system.tokenizer, examples, hard_negatives(passages, examples, params.hard_negatives), params)
    collate = Collator(system.tokenizer.pad_token_id, params.hard_negatives)
    device = system.model.z.device
    model = system.model.train()
    kept, times, losses, grads = 0, [], [], None
    for step in range(steps):
        batch = {k: v.to(device) for k, v in collate(encoded[step * params.batch_size : (step + 1) * params.batch_size]).items()}
        total = 0

        def pack(tensor):
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                out = model(**batch)
        out["loss"].backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        kept = max(kept, total)
        losses.append(float(out["loss"].detach()))
        if step == 0:
            grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
    return {"saved_for_backward_mb": kept / 2**20, "s_per_step_median": sorted(times)[len(times) // 2],
            "s_per_step": times, "first_loss": losses[0], "grads": grads,
            "mean_tokens_per_example": sum(len(e.query) + len(e.evidence) for e in encoded) / len(encoded) + params.m_tokens}


def main(argv=None) -> int:
    from rag_bench.params import parse_assignments, parse_params
    from rag_bench.task_store import load_task
    from rag_bench_plugins.llm_memory.config import LLMMemoryParams
    from rag_bench_plugins.llm_memory.evaluation import gold_slice

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("-P", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    task = load_task(args.task)
    passages, questions = gold_slice(task.corpus, task.split("train"), args.passages)
    raw = parse_assignments(args.settings)
    rows = {}
    for checkpointing in ("false", "true"):
        params = parse_params(LLMMemoryParams, {**raw, "gradient_checkpointing": checkpointing}, "llm_memory_lean.py")
        torch.manual_seed(0)
        rows[checkpointing] = measure(params, passages, questions, args.steps)
    off, on = rows["false"], rows["true"]
    same = off["first_loss"] == on["first_loss"] and all(
        torch.allclose(off["grads"][n], on["grads"][n], rtol=1e-4, atol=1e-6) for n in off["grads"])
    result = {"settings": args.settings, "passages": len(passages), "batch_size": params.batch_size,
              "mean_tokens_per_example": off["mean_tokens_per_example"], "same_loss_and_gradients": same,
              **{f"checkpointing_{k}": {m: v for m, v in r.items() if m != "grads"} for k, r in rows.items()},
              "saved_ratio": on["saved_for_backward_mb"] / off["saved_for_backward_mb"],
              "time_ratio": on["s_per_step_median"] / off["s_per_step_median"]}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

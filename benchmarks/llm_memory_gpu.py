"""GPU benchmark of the llm_memory provider at research scale: the Qwen3-8B architecture, initialised from its config.

Everything measured goes through the provider's own code, on a real task:

- the base is loaded by the provider's loader (`base.load_base`: this process's
  GPU, bf16, LoRA through peft, gradient checkpointing as the settings say;
  with ``4bit`` bitsandbytes NF4 and the frozen bf16 base) from a folder of
  random Qwen3-8B weights written once (throughput does not depend on the
  weights, so no download is needed);
- training tokens/s, MFU and peak GPU memory of the provider's training loop
  (`train.train`: accelerate, bf16 autocast, AdamW, clipping) on the task's
  own training examples (indexing pseudo-queries and train questions, BM25
  hard negatives, batches as the settings make them);
- evidence latency per question of `LLMMemoryProvider.provide` on the task's
  test questions, at the reader depth (`-k`, default 5: one routed z_i and one
  generated evidence text per rank), with the settings' repetition penalty and
  `max_new_tokens`, at batch 1 and batch 32 (the provider's own
  `timings_ms`, routing and generation, and the wall time of the call).

Run on a CUDA machine from the repository root (RAG_BENCH_DATA_DIR pointing at the raw data)::

    python benchmarks/llm_memory_gpu.py --task nq_5k --out docs/benchmarks/llm_memory_gpu.json [-P key=value ...]

Z is random (normal, std 0.02), not content-initialised: routing still scores
every z_i and generation reads the routed ones, so the cost is the same.
The tokenizer is Qwen3-8B's when it is in the Hugging Face cache, else the
offline MiniLM WordPiece (ids within Qwen3's vocabulary; token counts differ
a little from Qwen3's); the results name it.

MFU counts the FLOPs a LoRA step must do per (padded) token: forward 2N and
the backward pass through the frozen weights 2N (no weight gradients for
them), plus attention (4·L·T·d forward, twice that backward), over the GPU's
dense bf16 peak (--peak-tflops, else looked up from the device name).
Gradient checkpointing recomputes the forward in the backward pass; that
recomputation is not counted (MFU stays the useful work).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

#: Qwen/Qwen3-8B config.json (the hub is not reachable from every benchmark machine). Its rope_theta (1e6) is
#: Qwen3Config's default and is left out: transformers 5 moved it into `rope_parameters`.
QWEN3_8B = dict(
    vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
    num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6,
    tie_word_embeddings=False, bos_token_id=151643, eos_token_id=151645, hidden_act="silu", attention_bias=False,
)
#: A model of the same shape family with MiniLM's vocabulary, for `--smoke` (checks the code paths on CPU; measures nothing).
SMOKE = {**QWEN3_8B, "vocab_size": 30522, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "bos_token_id": None, "eos_token_id": None}
#: Dense bf16 peak TFLOP/s by device-name fragment (vendor data sheets, SXM parts).
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}
QWEN3_8B_ID = "Qwen/Qwen3-8B"


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def lora_flops_per_token(config: dict, seq: int) -> float:
    n = non_embedding_params(config) + config["vocab_size"] * config["hidden_size"]  # + LM head
    attention = 4 * config["num_hidden_layers"] * seq * config["num_attention_heads"] * config["head_dim"]
    return 2 * n + 2 * n + attention * 3  # forward, backward through frozen weights; attention fwd + 2x bwd


def non_embedding_params(c: dict) -> int:
    d, heads, kv, hd, ff = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["intermediate_size"]
    per_layer = d * heads * hd * 2 + d * kv * hd * 2 + 3 * d * ff
    return c["num_hidden_layers"] * per_layer


def load_tokenizer(smoke: bool):
    """Qwen3-8B's tokenizer from the HF cache when there (never downloaded), else the offline MiniLM's."""
    from transformers import AutoTokenizer

    from rag_bench_plugins.llm_memory.tokenizer import ensure_special_tokens, minilm_path

    if not smoke:
        try:
            return ensure_special_tokens(AutoTokenizer.from_pretrained(QWEN3_8B_ID, local_files_only=True)), QWEN3_8B_ID
        except (OSError, ValueError):
            pass
    return ensure_special_tokens(AutoTokenizer.from_pretrained(minilm_path())), "sentence-transformers/all-MiniLM-L6-v2"


def write_random_base(folder: Path, config: dict, device: str) -> Path:
    """Random weights of `config` in bf16, saved once like a hub checkpoint (what `-P base=FOLDER` loads)."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    if (folder / "config.json").is_file():
        return folder
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(Qwen3Config(**config))
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(str(folder))
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return folder


def settings(mode: str, folder: Path, args):
    """The provider's settings (its defaults, then -P), with the base folder and the mode's quantisation."""
    from rag_bench.params import parse_assignments, parse_params
    from rag_bench_plugins.llm_memory.config import LLMMemoryParams

    raw = {"control_every": "0", "checkpoint_every": "1000000", **parse_assignments(args.settings)}
    raw.update(base=str(folder), quantization="4bit" if mode == "4bit" else "none",
               max_train_steps=str(args.warmup + args.steps))
    return parse_params(LLMMemoryParams, raw, "llm_memory_gpu.py")


def memory_system(params, tokenizer, passages):
    """The provider's model on `passages` (base through `load_base`), Z random."""
    from rag_bench_plugins.llm_memory.base import load_base
    from rag_bench_plugins.llm_memory.model import MemoryModel
    from rag_bench_plugins.llm_memory.system import MemorySystem
    from rag_bench_plugins.llm_memory.tokenizer import read_token_id

    model = MemoryModel(load_base(params, tokenizer, params.seed), len(passages), params)
    model.read_token = read_token_id(tokenizer)
    with torch.no_grad():
        model.z.normal_(0, 0.02)
    return MemorySystem(model, tokenizer, params, list(passages), {})


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_shapes(encoded, params, steps: int) -> list[tuple[int, int]]:
    """(real tokens, padded tokens) of each optimiser step's batch, as the training loop will build them."""
    from rag_bench_plugins.llm_memory.data import schedule

    order = schedule(len(encoded), params, steps)
    per_step = params.batch_size * params.grad_accum
    prefix = params.m_tokens + int(params.z_layout == "key+tokens")
    shapes = []
    for start in range(0, len(order), per_step):
        rows = [encoded[i] for i in order[start : start + per_step]]
        real = sum(len(r.query) + prefix + len(r.evidence) for r in rows)
        padded = len(rows) * (max(len(r.query) for r in rows) + prefix + max(len(r.evidence) for r in rows))
        shapes.append((real, padded))
    return shapes


def bench_training(system, task, args, device: str) -> dict:
    """The provider's training loop on the task's examples for warmup + steps optimiser steps, timed per step."""
    from rag_bench_plugins.llm_memory.data import build_examples, encode_examples, hard_negatives
    from rag_bench_plugins.llm_memory.train import train

    params = system.params
    questions = task.split("train") if "train" in task.card.splits else []
    examples = build_examples(system.passages, questions, params, params.seed)
    negatives = hard_negatives(system.passages, examples, params.hard_negatives)
    encoded = encode_examples(system.tokenizer, examples, negatives, params)
    total = args.warmup + args.steps
    shapes = step_shapes(encoded, params, total)
    stamps = []

    def on_step(step, model):
        sync(device)
        stamps.append(time.perf_counter())

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as state:
        train(system.model, encoded, params, Path(state), system.tokenizer.pad_token_id, progress=False, on_step=on_step)
    times = [b - a for a, b in zip([start, *stamps[:-1]], stamps)][args.warmup :]
    timed = shapes[args.warmup : total]
    seconds = sum(times)
    padded_len = sum(p for _, p in timed) / (len(timed) * params.batch_size * params.grad_accum)
    return {"steps_timed": len(times), "s_per_step": seconds / len(times), "batch_size": params.batch_size,
            "grad_accum": params.grad_accum, "gradient_checkpointing": params.use_gradient_checkpointing,
            "tokens_per_s": sum(r for r, _ in timed) / seconds, "padded_tokens_per_s": sum(p for _, p in timed) / seconds,
            "mean_padded_seq_len": padded_len, "flops_per_token": lora_flops_per_token(args.config, round(padded_len)),
            "examples": len(encoded),
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None}


def bench_latency(system, questions, args, batch_size: int, device: str) -> dict:
    """`LLMMemoryProvider.provide` on consecutive batches of test questions at the reader depth."""
    from rag_bench_plugins.llm_memory.provider import LLMMemoryProvider

    provider = LLMMemoryProvider(system.params)
    provider.use(system)
    system.model.eval()
    rows = {"routing_ms": [], "generation_ms": [], "wall_ms": []}
    for rep in range(args.warmup + args.latency_reps):
        batch = [questions[(rep * batch_size + i) % len(questions)] for i in range(batch_size)]
        sync(device)
        start = time.perf_counter()
        out = provider.provide(batch, args.k)
        sync(device)
        wall = (time.perf_counter() - start) * 1000 / batch_size
        if rep >= args.warmup:
            rows["routing_ms"].append(out[0].timings_ms["routing"])
            rows["generation_ms"].append(out[0].timings_ms["generation"])
            rows["wall_ms"].append(wall)
    med = {k: sorted(v)[len(v) // 2] for k, v in rows.items()}
    return {"batch_size": batch_size, "k": args.k, "max_new_tokens": system.params.max_new_tokens,
            "repetition_penalty": system.params.repetition_penalty, "passages": len(system.passages),
            "routing_ms_per_question": med["routing_ms"], "generation_ms_per_question": med["generation_ms"],
            "ms_per_question": med["routing_ms"] + med["generation_ms"], "wall_ms_per_question": med["wall_ms"],
            "reps": args.latency_reps}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--modes", default="bf16,4bit", help="Comma-separated: bf16, 4bit")
    parser.add_argument("-P", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="llm_memory setting (the provider's defaults otherwise; control_every=0 unless given).")
    parser.add_argument("--passages", type=int, default=0, help="Use the first N passages of the corpus (0: all).")
    parser.add_argument("--steps", type=int, default=10, help="Timed optimiser steps.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed steps / latency repetitions first.")
    parser.add_argument("--latency-batches", default="1,32")
    parser.add_argument("--latency-reps", type=int, default=5)
    parser.add_argument("-k", type=int, default=5, help="Reader depth: routed z_i per question, one evidence text each.")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="Where the random bf16 base is written (16 GB).")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--smoke", action="store_true",
                        help="Run the code paths on CPU with a small model (bf16 mode only, fp32 on CPU); no figures.")
    args = parser.parse_args(argv)
    device = "cpu" if args.smoke else "cuda"
    args.config = SMOKE if args.smoke else QWEN3_8B
    if args.smoke:
        args.modes = "bf16"
    elif not torch.cuda.is_available():
        print("llm_memory_gpu.py needs a CUDA GPU (bf16 and bitsandbytes 4-bit kernels); nothing was measured.", file=sys.stderr)
        return 2
    from rag_bench.task_store import load_task

    task = load_task(args.task)
    passages = task.corpus[: args.passages] if args.passages else task.corpus
    questions = task.split(task.card.default_split)
    tokenizer, tokenizer_name = load_tokenizer(args.smoke)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)"
    peak = peak_tflops(name, args.peak_tflops)
    import transformers

    results = {"device": name, "torch": torch.__version__, "transformers": transformers.__version__,
               "peak_bf16_tflops": peak, "config": args.config, "task": task.name, "passages": len(passages),
               "questions": len(questions), "tokenizer": tokenizer_name, "settings": args.settings, "modes": {}}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = write_random_base(Path(tmp) / "qwen3-8b-random", args.config, device)
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            params = settings(mode, folder, args)
            system = memory_system(params, tokenizer, passages)
            train = bench_training(system, task, args, device)
            if peak:
                train["mfu"] = train["padded_tokens_per_s"] * train["flops_per_token"] / (peak * 1e12)
            latency = [bench_latency(system, questions, args, int(b), device) for b in args.latency_batches.split(",")]
            results["modes"][mode] = {"training": train, "latency": latency,
                                      "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None}
            print(json.dumps({mode: results["modes"][mode]}, indent=2))
            del system
            if device == "cuda":
                torch.cuda.empty_cache()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

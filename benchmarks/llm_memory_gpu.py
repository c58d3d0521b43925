"""GPU benchmark of the llm_memory system at research scale: the Qwen3-8B architecture, initialised from its config.

Measures (throughput does not depend on the weights, so no download is needed):

- training tokens/s and model FLOPs utilisation (MFU) of one llm_memory training
  step (generation + routing loss over Z) with LoRA on a bf16 base and on a
  4-bit (bitsandbytes NF4) base;
- evidence latency per question: routing over Z + 64 generated tokens, at
  batch 1 and batch 32.

Run on a CUDA machine from the repository root::

    python benchmarks/llm_memory_gpu.py --out docs/benchmarks/llm_memory_gpu.json

MFU counts the FLOPs a LoRA step must do: forward 2N and the backward pass
through the frozen weights 2N per token (no weight gradients for them), plus
attention (4·L·T·d per token forward, twice that backward), over the GPU's
dense bf16 peak (--peak-tflops, else looked up from the device name).
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
#: A few-MB model of the same shape family, for `--smoke` (checks the script's code paths on CPU; measures nothing).
SMOKE = {**QWEN3_8B, "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}
#: Dense bf16 peak TFLOP/s by device-name fragment (vendor data sheets, SXM parts).
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def build_base(mode: str, workdir: Path, args):
    """The Qwen3-8B architecture in bf16 (random weights), or the same quantised to 4-bit NF4 on load."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Qwen3Config

    config = Qwen3Config(**args.config)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(args.device):
            model = AutoModelForCausalLM.from_config(config)
    finally:
        torch.set_default_dtype(default)
    if mode == "bf16":
        return model
    # bitsandbytes quantises while loading: write the random weights once, load them back in 4-bit
    folder = workdir / "qwen3-8b-random"
    if not (folder / "config.json").is_file():
        model.save_pretrained(str(folder))
    del model
    torch.cuda.empty_cache()
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    return AutoModelForCausalLM.from_pretrained(str(folder), quantization_config=quant, dtype=torch.bfloat16,
                                                device_map={"": torch.cuda.current_device()})


def memory_model(mode: str, args, workdir: Path):
    from rag_bench_plugins.llm_memory.base import add_adapters
    from rag_bench_plugins.llm_memory.config import LLMMemoryParams
    from rag_bench_plugins.llm_memory.model import MemoryModel

    params = LLMMemoryParams(base="Qwen/Qwen3-8B", quantization="4bit" if mode == "4bit" else "none", lora_r=args.lora_r,
                             lora_alpha=2 * args.lora_r, m_tokens=args.m_tokens, z_dim=args.z_dim)
    model = MemoryModel(add_adapters(build_base(mode, workdir, args), params), args.passages, params)
    with torch.no_grad():
        model.z.normal_(0, 0.02)
    return model, params


def lora_flops_per_token(config: dict, seq: int) -> float:
    n = non_embedding_params(config) + config["vocab_size"] * config["hidden_size"]  # + LM head
    attention = 4 * config["num_hidden_layers"] * seq * config["num_attention_heads"] * config["head_dim"]
    return 2 * n + 2 * n + attention * 3  # forward, backward through frozen weights; attention fwd + 2x bwd


def non_embedding_params(c: dict) -> int:
    d, heads, kv, hd, ff = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["intermediate_size"]
    per_layer = d * heads * hd * 2 + d * kv * hd * 2 + 3 * d * ff
    return c["num_hidden_layers"] * per_layer


def batch(args, passages: int) -> dict:
    q = args.query_tokens
    e = args.seq_len - q - args.m_tokens
    device, vocab = args.device, args.config["vocab_size"]
    return {
        "q_ids": torch.randint(0, vocab, (args.batch_size, q), device=device),
        "q_mask": torch.ones(args.batch_size, q, dtype=torch.long, device=device),
        "e_ids": torch.randint(0, vocab, (args.batch_size, e), device=device),
        "e_mask": torch.ones(args.batch_size, e, dtype=torch.long, device=device),
        "doc": torch.randint(0, passages, (args.batch_size,), device=device),
        "negatives": torch.randint(0, passages, (args.batch_size, 3), device=device),
    }


def sync(args) -> None:
    if args.device == "cuda":
        torch.cuda.synchronize()


def bench_training(model, params, args) -> dict:
    from rag_bench_plugins.llm_memory.train import param_groups

    model.train()
    optimizer = torch.optim.AdamW(param_groups(model, params))
    data = batch(args, model.z.shape[0])
    times = []
    for step in range(args.warmup + args.steps):
        sync(args)
        start = time.perf_counter()
        with torch.autocast(args.device, dtype=torch.bfloat16):
            out = model(**data)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(args)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    tokens = args.batch_size * args.seq_len
    per_step = sum(times) / len(times)
    return {"tokens_per_s": tokens / per_step, "s_per_step": per_step, "batch_size": args.batch_size, "seq_len": args.seq_len,
            "flops_per_token": lora_flops_per_token(args.config, args.seq_len),
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if args.device == "cuda" else None}


@torch.no_grad()
def bench_latency(model, args, batch_size: int) -> dict:
    from rag_bench_plugins.llm_memory.generation import generate_ids, route_ids

    model.eval()
    ids = torch.randint(0, args.config["vocab_size"], (batch_size, args.query_tokens), device=args.device)
    mask = torch.ones_like(ids)
    rows = {"routing_ms": [], "generation_ms": []}
    for rep in range(args.warmup + args.latency_reps):
        sync(args)
        t0 = time.perf_counter()
        with torch.autocast(args.device, dtype=torch.bfloat16):
            routed = route_ids(model, ids, mask, args.k)
            sync(args)
            t1 = time.perf_counter()
            q_ids, q_mask = ids.repeat_interleave(args.k, 0), mask.repeat_interleave(args.k, 0)
            generate_ids(model, q_ids, q_mask, model.z[routed.positions.reshape(-1).to(model.z.device)], args.new_tokens, eos=None)
        sync(args)
        t2 = time.perf_counter()
        if rep >= args.warmup:
            rows["routing_ms"].append((t1 - t0) * 1000)
            rows["generation_ms"].append((t2 - t1) * 1000)
    med = {k: sorted(v)[len(v) // 2] for k, v in rows.items()}
    return {"batch_size": batch_size, "k": args.k, "new_tokens": args.new_tokens, "passages": args.passages,
            "routing_ms_per_batch": med["routing_ms"], "generation_ms_per_batch": med["generation_ms"],
            "ms_per_question": (med["routing_ms"] + med["generation_ms"]) / batch_size}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="bf16,4bit", help="Comma-separated: bf16, 4bit")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256, help="Tokens per training example (query + memory + evidence).")
    parser.add_argument("--query-tokens", type=int, default=32)
    parser.add_argument("--m-tokens", type=int, default=4)
    parser.add_argument("--z-dim", type=int, default=256)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--passages", type=int, default=10000, help="Rows of Z (routing scores all of them).")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--latency-batches", default="1,32")
    parser.add_argument("--latency-reps", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("-k", type=int, default=1, help="Routed z_i per question, one evidence text each.")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="Where the 4-bit mode writes the random bf16 weights (16 GB).")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--smoke", action="store_true", help="Run the code paths on CPU with a tiny model (bf16 mode only); no figures.")
    args = parser.parse_args(argv)
    args.device, args.config = ("cpu", SMOKE) if args.smoke else ("cuda", QWEN3_8B)
    if args.smoke:
        args.modes, args.passages, args.steps, args.warmup, args.latency_reps = "bf16", 50, 1, 0, 1
    elif not torch.cuda.is_available():
        print("llm_memory_gpu.py needs a CUDA GPU (bf16 and bitsandbytes 4-bit kernels); nothing was measured.", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (smoke)"
    peak = peak_tflops(name, args.peak_tflops)
    results = {"device": name, "torch": torch.__version__, "peak_bf16_tflops": peak, "config": args.config, "modes": {}}
    import transformers

    results["transformers"] = transformers.__version__
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            if args.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            model, params = memory_model(mode, args, Path(tmp))
            train = bench_training(model, params, args)
            if peak:
                train["mfu"] = train["tokens_per_s"] * train["flops_per_token"] / (peak * 1e12)
            latency = [bench_latency(model, args, int(b)) for b in args.latency_batches.split(",")]
            results["modes"][mode] = {"training": train, "latency": latency}
            print(json.dumps({mode: results["modes"][mode]}, indent=2))
            del model
            if args.device == "cuda":
                torch.cuda.empty_cache()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

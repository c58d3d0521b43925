"""The base causal LM θ: a tiny Qwen3-style decoder from a config, or any Hugging Face model, with LoRA or 4-bit QLoRA."""

from __future__ import annotations

import torch

from rag_bench.errors import RagBenchError

MINILM_HIDDEN = 384


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


def tiny_config(params, tokenizer):
    """A small Qwen3-style decoder (GQA, RMSNorm, RoPE, tied embeddings) sized by the tiny_* settings."""
    from transformers import Qwen3Config

    hidden = MINILM_HIDDEN if params.tokenizer == "minilm-warm" else params.tiny_hidden
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
    with torch.no_grad():
        lm.get_input_embeddings().weight.copy_(weights[key])


def load_base(params, tokenizer, seed: int):
    """The base LM with its trainable parts set (LoRA adapters or all weights), on the compute device."""
    from transformers import AutoModelForCausalLM

    if params.is_tiny:
        torch.manual_seed(seed)
        lm = AutoModelForCausalLM.from_config(tiny_config(params, tokenizer))
        if params.tokenizer == "minilm-warm":
            warm_start_embeddings(lm)
        lm = lm.to(compute_dtype())
    else:
        kwargs = {"dtype": compute_dtype()}
        if params.quantization == "4bit":
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16)
            kwargs["device_map"] = {"": torch.cuda.current_device()}
        try:
            lm = AutoModelForCausalLM.from_pretrained(params.base, **kwargs)
        except (OSError, ValueError) as exc:
            raise RagBenchError(f"llm_memory: cannot load base {params.base!r}: {str(exc).splitlines()[0]}") from None
    if len(tokenizer) > lm.get_input_embeddings().weight.shape[0]:
        lm.resize_token_embeddings(len(tokenizer))
    return add_adapters(lm, params)


def add_adapters(lm, params):
    """LoRA through peft (only adapters train), or full fine-tuning (every weight trains)."""
    if not params.use_lora:
        for p in lm.parameters():
            p.requires_grad_(True)
        return lm
    from peft import LoraConfig, get_peft_model

    if params.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        lm = prepare_model_for_kbit_training(lm, use_gradient_checkpointing=False)
    present = {name.rsplit(".", 1)[-1] for name, _ in lm.named_modules()}
    missing = [t for t in params.lora_targets if t not in present]
    if missing:
        raise RagBenchError(f"llm_memory: LoRA target modules {missing} are not in {params.base}; "
                            f"set -P lora_targets=... to some of its linear layers")
    config = LoraConfig(r=params.lora_r, lora_alpha=params.lora_alpha, lora_dropout=params.lora_dropout,
                        target_modules=list(params.lora_targets), bias="none")
    return get_peft_model(lm, config).get_base_model()

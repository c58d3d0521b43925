"""Checkpoints in safetensors: the trained weights, Z, the tokenizer and a JSON card (corpus fingerprint, settings, training log)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file

from rag_bench.api import Passage, RagBenchError, write_json_atomic

WEIGHTS = "memory.safetensors"
CARD = "memory.json"
FORMAT = 1


def corpus_fingerprint(passages: Sequence[Passage]) -> str:
    """Order-independent sha256 of the passages a memory holds (doc_id, title, text)."""
    digests = sorted(hashlib.sha256(f"{p.doc_id}\0{p.title}\0{p.text}".encode("utf-8")).hexdigest() for p in passages)
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


def saved_tensors(model, params, final: bool = False) -> dict[str, torch.Tensor]:
    """What a checkpoint holds: every trainable tensor (LoRA, Z, projection, routing heads), and the whole LM when
    tiny; a finished memory's Z in 16 bits under ``z_storage=fp16`` (a training state keeps it in fp32)."""
    tensors = {name: p.detach().to("cpu").contiguous().clone() for name, p in model.named_parameters()
               if p.requires_grad or params.is_tiny}
    if final and params.z_storage == "fp16" and "z" in tensors:
        tensors["z"] = tensors["z"].half()
    return tensors


def write_weights(model, params, path: Path, final: bool = False) -> None:
    tmp = path.with_suffix(".tmp")
    save_file(saved_tensors(model, params, final), str(tmp))
    tmp.replace(path)


def read_weights(model, path: Path) -> None:
    """Load saved tensors into `model` (Z is resized to the saved number of passages)."""
    tensors = load_file(str(path))
    if "z" in tensors and tensors["z"].shape != model.z.shape:
        model.z.data = torch.empty(tensors["z"].shape, dtype=model.z.dtype, device=model.z.device)
    unexpected = model.load_state_dict(tensors, strict=False).unexpected_keys
    if unexpected:
        raise RagBenchError(f"llm_memory: checkpoint {path} holds weights this model lacks ({unexpected[:3]}...); "
                            "was it trained with other settings?")


def save_checkpoint(folder: Path, model, tokenizer, params, doc_ids: Sequence[str], fingerprint: str,
                    extra: dict[str, Any]) -> None:
    from .tokenizer import save_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    write_weights(model, params, folder / WEIGHTS, final=True)
    save_tokenizer(tokenizer, folder)
    card = {"format": FORMAT, "settings": params_dict(params), "doc_ids": list(doc_ids),
            "corpus_fingerprint": fingerprint, **extra}
    write_json_atomic(folder / CARD, card)


def params_dict(params) -> dict[str, Any]:
    from rag_bench.api import params_to_dict

    return params_to_dict(params)


def read_card(folder: Path) -> dict[str, Any] | None:
    path = folder / CARD
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        return None
    card = json.loads(path.read_text(encoding="utf-8"))
    if card.get("format") != FORMAT:
        raise RagBenchError(f"llm_memory: checkpoint {folder} has format {card.get('format')}, this version reads {FORMAT}; retrain it")
    return card


def check_corpus(card: dict[str, Any], folder: Path, passages: Sequence[Passage], task_name: str) -> None:
    """Refuse a memory trained on another corpus: its z_i would answer for the wrong passages."""
    expected = corpus_fingerprint(passages)
    if card["corpus_fingerprint"] != expected:
        raise RagBenchError(
            f"llm_memory: checkpoint {folder} was trained on another corpus ({len(card['doc_ids'])} passages, "
            f"fingerprint {card['corpus_fingerprint'][:12]}) than task {task_name} ({len(passages)} passages, "
            f"{expected[:12]}); train one for this task (drop -P checkpoint) or point -P checkpoint at a matching one"
        )

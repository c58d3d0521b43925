"""A trained memory as one object: model, tokenizer, settings and the passages its z_i stand for."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Sequence

import torch

from rag_bench.errors import RagBenchError
from rag_bench.types import Passage, Question

from .base import base_fingerprint, base_identity, load_base
from .checkpoint import CARD, corpus_fingerprint, read_card, read_weights, save_checkpoint, WEIGHTS
from .config import LLMMemoryParams
from .content_init import init_memory, passage_text
from .data import build_examples, encode_examples, hard_negatives
from .model import MemoryModel
from .tokenizer import build_tokenizer, load_tokenizer, read_token_id, save_tokenizer
from .train import TrainReport, train

#: Settings that change only inference, taken from the caller rather than from a checkpoint.
RUNTIME_FIELDS = ("max_new_tokens", "repetition_penalty", "threads", "checkpoint")
TRAIN_STATE = "train_state"


def set_threads(params) -> None:
    if params.torch_threads and not torch.cuda.is_available():
        torch.set_num_threads(params.torch_threads)


@dataclasses.dataclass
class MemorySystem:
    """The LLM-as-memory system: `model.z[i]` is the memory of `passages[i]`."""

    model: MemoryModel
    tokenizer: object
    params: LLMMemoryParams
    passages: list[Passage]
    card: dict

    @property
    def doc_ids(self) -> list[str]:
        return [p.doc_id for p in self.passages]

    @classmethod
    def build(cls, params: LLMMemoryParams, passages: Sequence[Passage], tokenizer=None) -> "MemorySystem":
        """An untrained system: base LM, Z initialised from each passage's content."""
        set_threads(params)
        texts = [passage_text(p) for p in passages]
        tokenizer = tokenizer or build_tokenizer(params, texts)
        model = MemoryModel(load_base(params, tokenizer, params.seed), len(passages), params)
        model.read_token = read_token_id(tokenizer)
        init_memory(model, tokenizer, passages, params.seed)
        model.eval()
        return cls(model, tokenizer, params, list(passages), {})

    @classmethod
    def fit(cls, params: LLMMemoryParams, passages: Sequence[Passage], questions: Sequence[Question], folder: Path,
            progress: bool = True, stop_after: int | None = None) -> tuple["MemorySystem", TrainReport]:
        """Train on indexing examples of `passages` and the `questions` whose gold passage is among them, then save to `folder`."""
        if not passages:
            raise RagBenchError("llm_memory: the corpus is empty; there is nothing to memorise")
        state = folder / TRAIN_STATE
        tokenizer = load_tokenizer(state) if (state / "tokenizer").is_dir() else None
        system = cls.build(params, passages, tokenizer)
        save_tokenizer(system.tokenizer, state)
        examples = build_examples(passages, questions, params, params.seed)
        negatives = hard_negatives(passages, examples, params.hard_negatives)
        encoded = encode_examples(system.tokenizer, examples, negatives, params)
        report = train(system.model, encoded, params, state, system.tokenizer.pad_token_id, stop_after=stop_after, progress=progress)
        if report.interrupted:
            return system, report
        system.card = {"train": {"steps": report.steps, "seconds": report.seconds, "resumed_from": report.resumed_from,
                                 "examples": len(encoded), "kinds": _kinds(examples), "history": report.history,
                                 "splits": sorted({q.split for q in questions})},
                       "base": base_provenance(params)}
        from accelerate import PartialState

        if PartialState().is_main_process:  # under `accelerate launch`, one process writes
            system.save(folder)
            shutil.rmtree(state, ignore_errors=True)
        return system, report

    def save(self, folder: Path) -> None:
        extra = {k: v for k, v in self.card.items() if k not in ("format", "settings", "doc_ids", "corpus_fingerprint")}
        save_checkpoint(folder, self.model, self.tokenizer, self.params, self.doc_ids, corpus_fingerprint(self.passages), extra)

    @classmethod
    def load(cls, folder: Path, passages_by_id: dict[str, Passage], runtime: LLMMemoryParams | None = None) -> "MemorySystem":
        """Load a checkpoint; its settings define the model, `runtime` supplies inference-only settings."""
        card = read_card(folder)
        if card is None:
            raise RagBenchError(f"llm_memory: no checkpoint in {folder} (expected {CARD} and {WEIGHTS})")
        settings = dict(card["settings"])
        if settings.get("lora_targets") is not None:
            settings["lora_targets"] = tuple(settings["lora_targets"])
        if runtime is not None:
            settings.update({f: getattr(runtime, f) for f in RUNTIME_FIELDS})
        params = LLMMemoryParams(**settings)
        set_threads(params)
        # passages written with `memory add` travel in the card
        added = {row[0]: Passage(*row) for entry in card.get("added", []) for row in entry["passages"]}
        passages_by_id = {**passages_by_id, **added}
        missing = [d for d in card["doc_ids"] if d not in passages_by_id]
        if missing:
            raise RagBenchError(f"llm_memory: checkpoint {folder} holds passages the corpus lacks (e.g. {missing[0]})")
        check_base(card, params, folder)
        tokenizer = load_tokenizer(folder)
        model = MemoryModel(load_base(params, tokenizer, params.seed), len(card["doc_ids"]), params)
        model.read_token = read_token_id(tokenizer)
        read_weights(model, folder / WEIGHTS)
        model.eval()
        return cls(model, tokenizer, params, [passages_by_id[d] for d in card["doc_ids"]], card)


def _kinds(examples) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return counts


def base_provenance(params: LLMMemoryParams) -> dict:
    """Which public base a memory's LoRA and Z belong to: its id and a sha256 of its config and weight files."""
    return {**base_identity(params), "fingerprint": base_fingerprint(params)}


def check_base(card: dict, params: LLMMemoryParams, folder: Path) -> None:
    """Refuse to load a memory onto a base other than the one it was trained on (its weights would not fit)."""
    saved = (card.get("base") or {}).get("fingerprint")
    if saved is None:
        return
    current = base_fingerprint(params)
    if current is not None and current != saved:
        raise RagBenchError(f"llm_memory: checkpoint {folder} was trained on base {params.base!r} with weights "
                            f"{saved[:12]}, but that base now has {current[:12]}; load it with the base it was trained on")

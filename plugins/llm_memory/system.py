"""A trained memory as one object: model, tokenizer, settings and the passages its z_i stand for."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Callable, Sequence

import torch

from rag_bench.api import Passage, Question, RagBenchError

from .base import base_provenance, load_base
from .checkpoint import CARD, corpus_fingerprint, read_card, read_weights, save_checkpoint, WEIGHTS
from .config import LLMMemoryParams, RUNTIME_FIELDS
from .content_init import init_memory
from .storage import passage_text
from .data import build_examples, encode_examples, hard_negatives
from .model import MemoryModel
from .routing_check import INITIAL, RoutingCurve, comparable, initial_state, save_initial
from .tokenizer import TOKENIZER_DIR, build_tokenizer, load_tokenizer, read_token_id, save_tokenizer
from .train import TrainReport, has_state, process_state, train

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
    def build(cls, params: LLMMemoryParams, passages: Sequence[Passage], tokenizer=None,
              init: bool = True) -> "MemorySystem":
        """An untrained system: base LM, Z initialised from each passage's content (left unset when not `init`:
        a resumed training loads every weight that initialisation sets)."""
        set_threads(params)
        texts = [passage_text(p) for p in passages]
        tokenizer = tokenizer or build_tokenizer(params, texts)
        model = MemoryModel(load_base(params, tokenizer, params.seed), len(passages), params)
        model.read_token = read_token_id(tokenizer)
        if init:
            init_memory(model, tokenizer, passages, params.seed)
        model.eval()
        return cls(model, tokenizer, params, list(passages), {})

    @classmethod
    def fit(cls, params: LLMMemoryParams, passages: Sequence[Passage], questions: Sequence[Question], folder: Path,
            progress: bool = True, stop_after: int | None = None,
            on_step: Callable[[int, MemoryModel], None] | None = None,
            dev: Sequence[Question] = ()) -> tuple["MemorySystem", TrainReport]:
        """Train on indexing examples of `passages` and the `questions` whose gold passage is among them, then save to `folder`.

        `dev` questions measure the routing before training and every `eval_every` steps (`RoutingCurve`, in the
        card); the memory kept is the one at the curve's best point (early stopping; `early_stop_patience` also ends
        training early), and the untrained routing is kept beside it (`routing_check`) so runs can compare the two.
        Under ``z_storage=fp16`` Z is rounded to 16 bits once training ends, and answered from as stored.

        Under a multi-process launch every process trains its share of each
        batch (see `train`), and only the main process writes: the tokenizer
        (the others read it back, so all hold the same one), the resumable
        state and the finished memory. `on_step(step, model)` is called after
        each optimiser step, in every process (tests and benchmarks).
        """
        if not passages:
            raise RagBenchError("llm_memory: the corpus is empty; there is nothing to memorise")
        state = folder / TRAIN_STATE
        distributed = process_state()
        saved_tokenizer = state / TOKENIZER_DIR
        if not saved_tokenizer.is_dir() and distributed.is_main_process:
            save_tokenizer(build_tokenizer(params, [passage_text(p) for p in passages]), state)
        distributed.wait_for_everyone()
        tokenizer = load_tokenizer(state) if saved_tokenizer.is_dir() else None
        resumed = has_state(state)
        system = cls.build(params, passages, tokenizer, init=not resumed and not params.closed_book)
        examples = build_examples(passages, questions, params, params.seed)
        # routing scored against every key needs no BM25 negatives
        negatives = hard_negatives(passages, examples, params.hard_negatives if params.route_negatives != "all" else 0)
        encoded = encode_examples(system.tokenizer, examples, negatives, params)
        checks = not params.closed_book and distributed.is_main_process
        if checks and not resumed and comparable(params):
            save_initial(state, initial_state(system.model))
        curve = RoutingCurve(system.tokenizer, params, dev if checks else (), system.doc_ids, state)
        curve.measure(0, system.model)

        def after_step(step: int, model: MemoryModel) -> None:
            curve.on_step(step, model)
            if on_step is not None:
                on_step(step, model)

        report = train(system.model, encoded, params, state, system.tokenizer.pad_token_id, stop_after=stop_after,
                       progress=progress, on_step=after_step, stop_when=curve.should_stop)
        if report.interrupted:
            return system, report
        curve.measure(report.steps, system.model)
        curve.restore_best(system.model)
        if params.z_storage == "fp16":
            system.model.z.data = system.model.z.data.half().float()
        system.card = {"train": {"steps": report.steps, "seconds": report.seconds, "resumed_from": report.resumed_from,
                                 "stopped_early": report.stopped_early,
                                 "examples": len(encoded), "kinds": _kinds(examples), "history": report.history,
                                 "splits": sorted({q.split for q in questions}), "processes": report.processes,
                                 "device": report.device, "dtype": str(system.model.lm_dtype).removeprefix("torch."),
                                 "routing_curve": curve.summary()},
                       "base": base_provenance(params)}
        if distributed.is_main_process:  # under `accelerate launch`, one process writes
            system.save(folder)
            if (state / INITIAL).is_file():
                shutil.copyfile(state / INITIAL, folder / INITIAL)
            shutil.rmtree(state, ignore_errors=True)
        distributed.wait_for_everyone()
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
        tokenizer = load_tokenizer(folder)
        lm = load_base(params, tokenizer, params.seed)  # on this process's device, in the dtype training used there
        check_base(card, params, folder)  # after loading: a hub base's files are in the cache only then
        model = MemoryModel(lm, len(card["doc_ids"]), params)
        model.read_token = read_token_id(tokenizer)
        read_weights(model, folder / WEIGHTS)
        model.eval()
        return cls(model, tokenizer, params, [passages_by_id[d] for d in card["doc_ids"]], card)


def _kinds(examples) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return counts


def check_base(card: dict, params: LLMMemoryParams, folder: Path) -> None:
    """Refuse to load a memory onto a base other than the one it was trained on: its LoRA adapters, projection and
    Z were fitted to that base's weights and would not fit another's (memories that record no base are trusted)."""
    saved = card.get("base") or {}
    if saved.get("fingerprint") is None and saved.get("revision") is None:
        return
    current = base_provenance(params)
    for field in ("fingerprint", "revision"):
        if saved.get(field) is not None and current[field] is not None and saved[field] != current[field]:
            what = "config and weight files of sha256" if field == "fingerprint" else "hub revision"
            raise RagBenchError(
                f"llm_memory: checkpoint {folder} was trained on base {params.base!r} with {what} "
                f"{saved[field][:12]}, but {params.base!r} here has {current[field][:12]}: the memory's LoRA, "
                f"projection and Z belong to the other weights. Load it where {params.base!r} is the model it was "
                f"trained on (e.g. download revision {saved.get('revision') or 'recorded in memory.json'}), or train a "
                f"memory for this base")

"""The `llm_memory` provider: routing top-k over Z inside the model, then one generated evidence text per routed z_i,
beside the controls that show whether that text comes from z."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Sequence

import torch

from rag_bench.errors import RagBenchError
from rag_bench.provider import EvidenceProvider
from rag_bench.types import Hit, ProvidedEvidence, Question

from .base import base_identity, check_environment
from .checkpoint import check_corpus, read_card
from .config import LLMMemoryParams, RUNTIME_FIELDS
from .generation import generate, key_index, route_and_generate
from .quantized import int8_inference_copy
from .system import MemorySystem

MEMORY_DIR = "memory"
#: The generated controls: the same model, routing and decoding, with the memory it reads zeroed, or taken from
#: another passage (a fixed derangement of Z). The question echo, the third control, needs no model (metrics.py).
GENERATED_CONTROLS = ("zeroed_z", "shuffled_z")


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def derangement(n: int, seed: int) -> torch.Tensor:
    """A seeded permutation of range(n) with no fixed point for n >= 2 (one cycle through a random order):
    shuffled_z reads z[perm[i]] where routing chose passage i."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(-1)
    return perm


def controlled(qid: str, every: int) -> bool:
    """Whether a question gets the generated controls: all when every=1, a stable 1-in-`every` sample by qid, none at 0."""
    return every > 0 and zlib.crc32(qid.encode("utf-8")) % every == 0


class LLMMemoryProvider(EvidenceProvider):
    """LLM-as-memory: one learned z_i per passage, routing inside the LM, generated evidence.

    `prepare` trains the memory on the task's corpus and train split (or loads
    the checkpoint cached in the workdir, or ``-P checkpoint=DIR``); `provide`
    needs no retriever, index or passage text. For the questions chosen by
    `control_every`, each record also carries the evidence generated with z
    zeroed and with z shuffled across passages (``info["controls"]``).
    """

    Params = LLMMemoryParams
    description = ("LLM-as-memory: learned z_i per passage, routing in the LM, generated evidence, with zeroed/shuffled-z "
                   "controls (-P base=minilm|tiny|HF id)")
    version = "2"
    runtime_settings = RUNTIME_FIELDS

    def __init__(self, params=None):
        super().__init__(params)
        check_environment(self.params)

    def prepare(self, task, workdir: Path) -> None:
        folder = Path(self.params.checkpoint).expanduser() if self.params.checkpoint else workdir / MEMORY_DIR
        card = read_card(folder)
        if card is None and self.params.checkpoint:
            raise RagBenchError(f"llm_memory: -P checkpoint={folder} holds no memory checkpoint (memory.json + memory.safetensors)")
        if card is None:
            questions = task.split("train") if "train" in task.card.splits else []
            self.system, _ = MemorySystem.fit(self.params, task.corpus, questions, folder)
        else:
            check_corpus(card, folder, task.corpus, task.name)
            self.system = MemorySystem.load(folder, task.passages_by_id, runtime=self.params)
        self.folder = folder
        self.use(self.system)

    def use(self, system: MemorySystem) -> None:
        """Answer from `system` (what `prepare` trained or loaded): the controls' derangement of Z and the index
        of its routing keys are made here."""
        self.system = system
        self.trained_splits = list(system.card.get("train", {}).get("splits", ["train"]))
        self.shuffle = derangement(len(system.doc_ids), system.params.seed)
        #: The model that generates: the trained one, or its int8 copy (routing stays with the trained model; the
        #: footprint counts the trained weights).
        self.generating = (int8_inference_copy(system.model) if system.params.inference_quantization == "int8"
                           else system.model)
        self.index = key_index(system.model, system.params.exact_routing_max)

    def provide(self, questions: Sequence[Question], k: int, evidence_k: int | None = None) -> list[ProvidedEvidence]:
        system = self.system
        texts = [q.text for q in questions]
        routed, evidence, gen_s = route_and_generate(system.model, system.tokenizer, texts, k, evidence_k or k,
                                                     system.params, self.index, self.generating)
        gen_ms = gen_s * 1000 / len(questions)
        route_ms = routed.seconds * 1000 / len(questions)
        controls = self._controls(questions, routed.positions[:, : len(evidence[0])])
        doc_ids = system.doc_ids
        return [
            ProvidedEvidence(
                hits=[Hit(doc_ids[int(i)], float(s)) for i, s in zip(routed.positions[row], routed.scores[row])],
                evidence=evidence[row],
                timings_ms={"routing": route_ms, "generation": gen_ms, "total": route_ms + gen_ms},
                info={"controls": controls[row]} if row in controls else {},
            )
            for row in range(len(questions))
        ]

    def _controls(self, questions: Sequence[Question], read: torch.Tensor) -> dict[int, dict[str, list[str]]]:
        """Evidence of the chosen questions regenerated with zeroed and with shuffled memories (same routing, depth
        and decoding); kept out of the latency figures.

        A zeroed memory is the same at every rank, so it is generated once per question and repeated.
        """
        rows = [i for i, q in enumerate(questions) if controlled(q.qid, self.system.params.control_every)]
        if not rows:
            return {}
        system = self.system
        model = self.generating
        positions = read[rows]
        depth = positions.shape[1]
        texts = [questions[i].text for i in rows]
        flat = positions.reshape(-1).to(model.z.device)
        zeroed = generate(model, system.tokenizer, texts, positions[:, :1], system.params,
                          z=torch.zeros_like(model.z[flat[::depth]]))
        generated = {
            "zeroed_z": [row * depth for row in zeroed],
            "shuffled_z": generate(model, system.tokenizer, texts, positions, system.params,
                                   z=model.z[self.shuffle.to(model.z.device)[flat]]),
        }
        return {row: {name: generated[name][j] for name in GENERATED_CONTROLS} for j, row in enumerate(rows)}

    def footprint(self) -> dict[str, int]:
        """Everything trained on this corpus that answering needs, counted: Z, projection and routing heads, and the
        LM's trained weights (LoRA and weights the base checkpoint lacked, or the whole fine-tuned LM); the public
        base checkpoint itself apart (``extra_base_model``, not counted)."""
        model = self.system.model
        heads = [*model.proj.parameters(), *model.route_query.parameters(), *model.route_key.parameters()]
        trained = [p for p in model.lm.parameters() if p.requires_grad]
        every = list(model.lm.parameters())
        full = len(trained) == len(every)
        parts = {
            "memory_table": tensor_bytes([model.z]),
            "projection_and_heads": tensor_bytes(heads),
            ("finetuned_lm" if full else "lora"): tensor_bytes(trained),
        }
        if not self.system.params.is_tiny:
            parts["extra_base_model"] = tensor_bytes(every if full else [p for p in every if not p.requires_grad])
        return parts

    def metadata(self) -> dict:
        params = self.system.params
        base = base_identity(params)
        card_base = self.system.card.get("base") or {}
        trained = sum(p.numel() for p in self.system.model.parameters() if p.requires_grad)
        return {
            "trained_on_corpus": True,
            "trained_splits": self.trained_splits,
            "parameters_trained": int(trained),
            "base_model": base.get("id") or ("tiny (from a config)" if params.is_tiny else params.base),
            "base_revision": card_base.get("revision") or card_base.get("fingerprint"),
            "finetune": "lora" if params.use_lora else "full",
            "controls_every": params.control_every,
            "routing_index": self.index.method,
        }

    def close(self) -> None:
        self.system = self.generating = None
        self.index = None

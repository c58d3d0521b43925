"""The `llm_memory` provider: routing top-k over Z inside the model, then one generated evidence text per routed z_i."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from rag_bench.errors import RagBenchError
from rag_bench.provider import EvidenceProvider
from rag_bench.types import Hit, ProvidedEvidence, Question

from .base import check_environment
from .checkpoint import check_corpus, read_card
from .config import LLMMemoryParams
from .generation import generate, route
from .system import MemorySystem

MEMORY_DIR = "memory"


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class LLMMemoryProvider(EvidenceProvider):
    """LLM-as-memory: one learned z_i per passage, routing inside the LM, generated evidence.

    `prepare` trains the memory on the task's corpus and train split (or loads
    the checkpoint cached in the workdir, or ``-P checkpoint=DIR``); `provide`
    needs no retriever, index or passage text.
    """

    Params = LLMMemoryParams
    description = "LLM-as-memory: learned z_i per passage, routing in the LM, generated evidence (-P base=tiny|HF id)"
    version = "1"

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

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        system = self.system
        texts = [q.text for q in questions]
        routed = route(system.model, system.tokenizer, texts, k, system.params)
        start = time.perf_counter()
        evidence = generate(system.model, system.tokenizer, texts, routed.positions, system.params)
        gen_ms = (time.perf_counter() - start) * 1000 / len(questions)
        route_ms = routed.seconds * 1000 / len(questions)
        doc_ids = system.doc_ids
        return [
            ProvidedEvidence(
                hits=[Hit(doc_ids[int(i)], float(s)) for i, s in zip(routed.positions[row], routed.scores[row])],
                evidence=evidence[row],
                timings_ms={"routing": route_ms, "generation": gen_ms, "total": route_ms + gen_ms},
            )
            for row in range(len(questions))
        ]

    def footprint(self) -> dict[str, int]:
        model = self.system.model
        heads = [*model.proj.parameters(), *model.route_query.parameters(), *model.route_key.parameters()]
        lm_trained = [p for n, p in model.lm.named_parameters() if "lora_" in n]
        part = "extra_lora" if lm_trained else "extra_model"
        return {
            "memory_table": tensor_bytes([model.z]),
            "projection": tensor_bytes(heads),
            part: tensor_bytes(lm_trained or list(model.lm.parameters())),
        }

    def close(self) -> None:
        self.system = None

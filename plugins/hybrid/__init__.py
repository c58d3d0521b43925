"""The `hybrid` provider: bm25 + dense fused by reciprocal rank fusion, then a cross-encoder.

It builds the `bm25` and `dense` providers through the registry and prepares
them in their own cache folders (`rag_bench.api.build_provider` and
`prepare_provider`; it imports neither plugin), so their state is re-used: a
hybrid run after a dense run encodes nothing. Both must be `Retriever`s: it
reads their rankings with `search` and the passages with their `store`.

Pipeline per question: the top `depth` (100) of each retriever are fused with
RRF (constant `rrf_k` = 60, see `fusion.RRF_K`); the fused top `rerank_depth`
(50) are re-scored by a cross-encoder (default
cross-encoder/ms-marco-MiniLM-L-6-v2; ``-P reranker=none`` skips it). Hits
past `rerank_depth` keep their fused order below the reranked ones, with
placeholder scores (the lowest reranked score minus 1, 2, ...).

Writing new passages (`write`) writes them into both parts (bm25 rebuilds its
index, dense adds their vectors), in the same order, so the two parts' corpus
positions stay aligned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rag_bench.api import (
    EvidenceProvider, Passage, ProvidedEvidence, Question, RagBenchError, Retriever, WriteCost, build_provider,
    hookimpl, parse_assignments, prepare_provider,
)

from .fusion import RRF_K, reciprocal_rank_fusion
from .rerank import DEFAULT_RERANKER, load_cross_encoder, rerank, reranker_revision

NO_RERANKER = "none"
#: The dense encoder by default: the `dense` provider's default preset (a test checks the two agree).
DEFAULT_MODEL = "e5-base-v2"


@dataclass(frozen=True)
class HybridParams:
    """Settings of the hybrid provider (``-P key=value``).

    `model` is the dense encoder (as the dense provider's ``-P model``);
    `dense` and `bm25` pass any other settings to those providers as
    comma-separated KEY=VALUE pairs, e.g. ``-P dense=index=hnsw,batch_size=32``
    or ``-P bm25=k1=1.2,b=0.75``. `reranker` is a cross-encoder id or folder,
    or ``none``.
    """

    model: str = DEFAULT_MODEL
    dense: tuple[str, ...] = ()
    bm25: tuple[str, ...] = ()
    depth: int = 100
    rrf_k: int = RRF_K
    reranker: str = DEFAULT_RERANKER
    rerank_depth: int = 50
    rerank_batch_size: int = 32
    rerank_max_length: int = 512
    device: str | None = None

    def __post_init__(self):
        if self.depth < 1 or self.rerank_depth < 1 or self.rrf_k < 0:
            raise ValueError("depth and rerank_depth must be at least 1, rrf_k at least 0")


def _sub_settings(owner: str, pairs: tuple[str, ...]) -> dict[str, str]:
    try:
        return parse_assignments(pairs)
    except RagBenchError:
        raise RagBenchError(f"hybrid: -P {owner}= takes comma-separated KEY=VALUE pairs, got {','.join(pairs)!r}") from None


def _retriever(name: str, settings: dict[str, str]) -> Retriever:
    """The registered provider `name` built with `settings`; hybrid fuses rankings, so it must be a `Retriever`."""
    provider = build_provider(name, settings)
    if not isinstance(provider, Retriever):
        raise RagBenchError(f"hybrid: the {name!r} provider registered is not a Retriever (search + store); "
                            "hybrid fuses two retrievers' rankings")
    return provider


class HybridProvider(EvidenceProvider):
    """Reciprocal rank fusion of bm25 and dense, optionally reranked by a cross-encoder."""

    Params = HybridParams
    description = "bm25 + dense fused by RRF (k=60), then a cross-encoder reranker (-P reranker=none to skip)"
    version = "1"

    def __init__(self, params: Any = None):
        super().__init__(params)
        p = self.params
        dense = _sub_settings("dense", p.dense)
        if "model" in dense:
            raise RagBenchError("hybrid: set the dense encoder with -P model=..., not inside -P dense=...")
        dense["model"] = p.model
        if p.device is not None:
            dense.setdefault("device", p.device)
        self.bm25 = _retriever("bm25", _sub_settings("bm25", p.bm25))
        self.dense = _retriever("dense", dense)
        self.reranker = None

    @property
    def reranks(self) -> bool:
        return self.params.reranker.lower() != NO_RERANKER

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["resolved"] = {"bm25": self.bm25.settings(), "dense": self.dense.settings()}
        return out

    def prepare(self, task, workdir: Path) -> None:
        if self.reranks:  # first: a reranker that cannot load fails before any encoding
            self.reranker = load_cross_encoder(self.params.reranker, self.params.device, self.params.rerank_max_length)
        self.prepared = {name: prepare_provider(name, sub, task) for name, sub in (("bm25", self.bm25), ("dense", self.dense))}

    def metadata(self) -> dict[str, Any]:
        """The dense encoder as base model, and the reranker; nothing is trained on the corpus."""
        return {
            **self.dense.metadata(),
            "reranker": self.params.reranker if self.reranks else None,
            "reranker_revision": reranker_revision(self.reranker) if self.reranker is not None else None,
        }

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        p = self.params
        texts = [q.text for q in questions]
        depth = max(p.depth, k)
        clock = [time.perf_counter()]
        lexical = self.bm25.search(texts, depth)
        clock.append(time.perf_counter())
        semantic = self.dense.search(texts, depth)
        clock.append(time.perf_counter())
        fused = [
            reciprocal_rank_fusion([[i for i, _ in lex], [i for i, _ in sem]], p.rrf_k)
            for lex, sem in zip(lexical, semantic)
        ]
        clock.append(time.perf_counter())
        if self.reranks:
            fused = self._rerank(texts, fused)
            clock.append(time.perf_counter())
        stages = ("bm25", "dense", "fusion", "rerank")
        timings = {stage: (clock[i + 1] - clock[i]) * 1000 / len(questions) for i, stage in enumerate(stages[: len(clock) - 1])}
        info = {"reranked": min(p.rerank_depth, depth) if self.reranks else 0}
        # The reranker reads whole passages (the dense store's texts); the reader gets the dense store's evidence
        # (cut by -P dense=evidence_bytes=B).
        store = self.dense.passage_store()
        return [store.hand_over(ranking[:k], timings_ms=dict(timings), info=dict(info)) for ranking in fused]

    def _rerank(self, queries: list[str], fused: list[list[tuple[int, float]]]) -> list[list[tuple[int, float]]]:
        """Cross-encoder scores for each fused head; the tail follows in fused order below it."""
        depth = self.params.rerank_depth
        texts = self.dense.passage_store().texts
        heads = [[(i, texts[i]) for i, _ in ranking[:depth]] for ranking in fused]
        out = []
        for ranking, head in zip(fused, rerank(self.reranker, queries, heads, self.params.rerank_batch_size)):
            floor = min((score for _, score in head), default=0.0)
            tail = [(i, floor - n) for n, (i, _) in enumerate(ranking[depth:], start=1)]
            out.append(head + tail)
        return out

    def write(self, passages: Sequence[Passage], steps: int | None = None) -> WriteCost:
        """Write the new passages into the bm25 part and the dense part (each its own way; see their `write`)."""
        costs = {"bm25": self.bm25.write(passages), "dense": self.dense.write(passages)}
        if len(self.bm25.passage_store()) != len(self.dense.passage_store()):
            raise RuntimeError("hybrid: bm25 and dense hold different numbers of passages after a write")
        seconds = [c.seconds for c in costs.values()]
        added = [c.bytes_added for c in costs.values()]
        return WriteCost(seconds=sum(seconds) if None not in seconds else None,
                         bytes_added=sum(added) if None not in added else None,
                         info={name: {"seconds": c.seconds, "bytes_added": c.bytes_added, **c.info}
                               for name, c in costs.items()})

    def footprint(self) -> dict[str, int]:
        bm25, dense = self.bm25.footprint(), self.dense.footprint()
        return {"bm25_index": bm25["index"], "dense_index": dense["index"], "text_store": dense["text_store"]}

    def close(self) -> None:
        self.bm25.close()
        self.dense.close()
        self.reranker = None


@hookimpl
def register_providers(register):
    register("hybrid", HybridProvider)

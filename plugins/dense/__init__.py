"""The `dense` provider: a sentence-transformers encoder and a FAISS index.

Passages are encoded as ``passage_prefix + title + "\\n" + text`` and queries
as ``query_prefix + question`` (E5's ``passage: `` / ``query: `` by default),
L2-normalised, and ranked by inner product (= cosine). Embeddings are cached
under ``<cache>/providers/dense/embeddings/`` by (encoder, prefix, pooling,
max length, corpus hash), so changing only the index kind re-uses them; the
index lives in the provider's workdir.

Writing new passages (`write`, ``rag-bench write-curve``) encodes them with
the same encoder and prefix and adds their vectors to the loaded index (an
IVF index keeps its trained lists); the index file in the cache is left as
it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rag_bench.api import (
    Passage, PassageStore, ProvidedEvidence, Question, RagBenchError, Retriever, WriteCost, check_evidence_bytes,
    document_text, fingerprint, hookimpl, write_json_atomic,
)

from . import encoder as enc
from . import index as faiss_index
from .presets import DEFAULT_MODEL, PRESETS, resolve

DONE = "done.json"
INDEX_FILE = "index.faiss"


@dataclass(frozen=True)
class DenseParams:
    """Settings of the dense provider (``-P key=value``).

    `model` is a preset name (see `PRESETS`), a Hugging Face id or a local
    folder; `query_prefix`, `passage_prefix`, `pooling` and `max_length`
    override the preset's (None: the preset's, or for a non-preset model no
    prefix and its own configuration's pooling and max length). `threads`
    sets torch's CPU threads while encoding (None: torch's default).
    `evidence_bytes` (None: whole passages) stores and hands over only the
    first that many UTF-8 bytes of each passage's evidence text, cut at a
    word boundary (`rag_bench.api.utf8_prefix`): the equal-bytes baseline.
    Passages are still encoded whole.
    """

    model: str = DEFAULT_MODEL
    query_prefix: str | None = None
    passage_prefix: str | None = None
    pooling: str | None = None
    max_length: int | None = None
    index: str = "flat"
    batch_size: int = 64
    device: str | None = None
    threads: int | None = None
    hnsw_m: int = 32
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 16
    evidence_bytes: int | None = None

    def __post_init__(self):
        if self.index not in faiss_index.INDEX_KINDS:
            raise ValueError(f"index must be one of {', '.join(faiss_index.INDEX_KINDS)}, got {self.index!r}")
        if self.batch_size < 1 or (self.threads is not None and self.threads < 1):
            raise ValueError("batch_size and threads must be at least 1")
        check_evidence_bytes(self.evidence_bytes)


class DenseProvider(Retriever):
    """Dense retrieval: normalised sentence embeddings in a FAISS inner-product index."""

    Params = DenseParams
    description = f"dense retrieval (sentence-transformers + FAISS; presets: {', '.join(PRESETS)})"
    version = "1"
    #: The cut changes what is handed over, not the index: every evidence_bytes shares one workdir.
    runtime_settings = ("evidence_bytes",)
    #: A task with an external corpus is searched in its prebuilt FAISS index (prebuilt.py).
    handles_external_corpus = True

    def __init__(self, params: Any = None):
        super().__init__(params)
        p = self.params
        self.model = resolve(p.model, p.query_prefix, p.passage_prefix, p.pooling, p.max_length)
        self.encoder = None
        self.index = None
        self.prebuilt = None
        #: Bytes of the index after a `write` (None: the index file in the workdir is the index).
        self.written_index_bytes: int | None = None

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["resolved"] = self.model.identity()
        return out

    def embeddings_path(self, task, workdir: Path) -> Path:
        """Where this encoder's embeddings of `task`'s corpus are cached (shared across index kinds)."""
        digest = fingerprint(
            {
                "version": self.version,
                "encoder": self.model.identity(),
                "corpus_sha256": task.corpus_sha256,
            }
        )
        return workdir.parent / "embeddings" / f"{task.name}-{digest}.npy"

    def prepare(self, task, workdir: Path) -> None:
        self.workdir = workdir
        if task.external is not None:
            from .prebuilt import PrebuiltDense

            self.prebuilt = PrebuiltDense.open(task, self.params, workdir, DEFAULT_MODEL)
            return
        # Built once: provide() only indexes the store. Its `texts` are the whole passages (what hybrid
        # reranks); its `evidence` is the provider's text store, cut to `evidence_bytes` when set.
        self.store = PassageStore(task.corpus, self.params.evidence_bytes)
        self.encoder = enc.load_encoder(self.model, self.params.device)
        if (workdir / DONE).is_file():
            self.index = faiss_index.load(workdir / INDEX_FILE)
        else:
            vectors = self.embeddings_path(task, workdir)
            if not vectors.is_file():
                texts = [document_text(p) for p in task.corpus]
                with enc.torch_threads(self.params.threads):
                    enc.encode_to_file(self.encoder, texts, self.model.passage_prefix, self.params.batch_size, vectors)
            self.index = faiss_index.build(np.load(vectors, mmap_mode="r"), self.params)
            faiss_index.save(self.index, workdir / INDEX_FILE)
            write_json_atomic(workdir / DONE, {"passages": len(task.corpus), "embeddings": str(vectors)})
        faiss_index.configure(self.index, self.params)

    def metadata(self) -> dict[str, Any]:
        """A pretrained encoder, not trained on the corpus (the index is built from it, not fitted); the evidence
        cut and the bytes of the whole passages' text store beside the stored one."""
        if self.prebuilt is not None:
            return {"base_model": self.prebuilt.encoder.model_id, "evidence_bytes": self.params.evidence_bytes,
                    "prebuilt_index": self.prebuilt.folder.name}
        return {"base_model": self.model.model_id, "base_revision": enc.encoder_revision(self.encoder, self.model),
                "evidence_bytes": self.params.evidence_bytes, "whole_text_bytes": self.store.whole_bytes}

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Normalised query embeddings (with the query prefix)."""
        with enc.torch_threads(self.params.threads):
            return enc.encode(self.encoder, queries, self.model.query_prefix, self.params.batch_size)

    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-k (corpus position, cosine) per query; used by other providers (hybrid) too."""
        if self.prebuilt is not None:
            raise RagBenchError("dense: search() returns corpus positions, which an external corpus does not have")
        if self.index is None:
            raise RagBenchError("dense: prepare() must run before search()")
        return faiss_index.search(self.index, self.encode_queries(queries), k)

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        if self.prebuilt is not None:
            return self.prebuilt.provide(questions, k)
        if self.index is None:
            raise RagBenchError("dense: prepare() must run before provide()")
        t0 = time.perf_counter()
        vectors = self.encode_queries([q.text for q in questions])
        t1 = time.perf_counter()
        results = faiss_index.search(self.index, vectors, k)
        t2 = time.perf_counter()
        per_question = {"encode": (t1 - t0) * 1000 / len(questions), "search": (t2 - t1) * 1000 / len(questions)}
        return [self.store.hand_over(ranked, timings_ms=dict(per_question)) for ranked in results]

    def write(self, passages: Sequence[Passage], steps: int | None = None) -> WriteCost:
        """Encode new passages (same encoder, prefix and pooling as the corpus) and add them to the loaded index;
        the index file in the cache is untouched."""
        if self.prebuilt is not None:
            raise RagBenchError("dense: a task's prebuilt FAISS index (external corpus) cannot be written to; "
                                "write-curve needs a task whose corpus is in memory")
        if self.index is None:
            raise RagBenchError("dense: prepare() must run before write()")
        start = time.perf_counter()
        before = self.written_index_bytes or (self.workdir / INDEX_FILE).stat().st_size
        with enc.torch_threads(self.params.threads):
            vectors = enc.encode(self.encoder, [document_text(p) for p in passages], self.model.passage_prefix,
                                 self.params.batch_size)
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.store = self.store.extended(passages)
        self.written_index_bytes = faiss_index.size_bytes(self.index)
        return WriteCost(seconds=time.perf_counter() - start, bytes_added=self.written_index_bytes - before)

    def index_bytes(self) -> int:
        """The index file's bytes, or after a `write` the grown index's serialised size."""
        return self.written_index_bytes or (self.workdir / INDEX_FILE).stat().st_size

    def footprint(self) -> dict[str, int]:
        if self.prebuilt is not None:
            return self.prebuilt.footprint()
        return super().footprint()

    def close(self) -> None:
        if self.prebuilt is not None:
            self.prebuilt.close()
        self.encoder = None
        self.index = None
        self.prebuilt = None


@hookimpl
def register_providers(register):
    register("dense", DenseProvider)

"""Dense retrieval over a task's external corpus: a prebuilt FAISS index (pyserini's layout).

Used instead of an index over ``task.corpus`` when the task declares an
``external_corpus`` with a ``dense`` index. pyserini's prebuilt dense indexes
are a folder with ``index`` (a FAISS index, rows in corpus order) and
``docid`` (one doc id per line, row by row); the archive is fetched, verified
and unpacked by `rag_bench.external`. The card fixes the query encoder the
index was built for (``query_encoder``: ``{kind: dpr, model: ...}`` for DPR's
question encoder, or ``{kind: sentence-transformers, model: ...}`` for a dense
preset or model id). The index holds no text: the card's ``texts: lucene``
says the passages come from the task's Lucene index, read through the `bm25`
provider found in the registry (built-ins do not import each other).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from rag_bench.api import (
    Hit, ProvidedEvidence, Question, RagBenchError, build_provider, evidence_store, index_folder, index_settings,
)

from . import encoder as enc
from . import index as faiss_index
from .presets import resolve

INDEX_FILE = "index"
DOCID_FILE = "docid"


def read_docids(path: Path) -> np.ndarray:
    """Doc ids row by row: int64 when all are integers (21M of them then take 168 MB), else strings."""
    ids = path.read_text(encoding="utf-8").split()
    try:
        return np.array([int(i) for i in ids], dtype=np.int64)
    except ValueError:
        return np.array(ids, dtype=object)


class DPRQueryEncoder:
    """DPR's question encoder (transformers' DPRQuestionEncoder): the pooler output, i.e. the [CLS] vector, no prefix."""

    def __init__(self, model_id: str, device: str | None = None):
        try:
            from transformers import AutoTokenizer, DPRQuestionEncoder

            self.tokenizer = AutoTokenizer.from_pretrained(model_id)
            self.model = DPRQuestionEncoder.from_pretrained(model_id).eval()
        except Exception as exc:  # hub, file and config errors all mean: this model is not available
            raise RagBenchError(
                f"dense: cannot load DPR's question encoder {model_id!r}: {type(exc).__name__}: {exc}. "
                f"Download it where you have a network (huggingface-cli download {model_id}) and set HF_HUB_OFFLINE=1."
            ) from None
        if device:
            self.model.to(device)
        self.model_id = model_id

    def encode(self, queries: Sequence[str], batch_size: int) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(queries), batch_size):
                batch = self.tokenizer(list(queries[start : start + batch_size]), padding=True, truncation=True,
                                       max_length=256, return_tensors="pt").to(self.model.device)
                out.append(self.model(**batch).pooler_output.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)


class SentenceQueryEncoder:
    """A dense preset or sentence-transformers model, as the in-memory path encodes queries (normalised)."""

    def __init__(self, name: str, device: str | None, threads: int | None):
        self.model = resolve(name, None, None, None)
        self.encoder = enc.load_encoder(self.model, device)
        self.threads = threads
        self.model_id = self.model.model_id

    def encode(self, queries: Sequence[str], batch_size: int) -> np.ndarray:
        with enc.torch_threads(self.threads):
            return enc.encode(self.encoder, queries, self.model.query_prefix, batch_size)


def load_query_encoder(spec: Mapping[str, Any], params):
    """The query encoder a card names for its dense index."""
    kind, model = spec.get("kind"), spec.get("model")
    if kind == "dpr":
        return DPRQueryEncoder(str(model), params.device)
    if kind == "sentence-transformers":
        return SentenceQueryEncoder(str(model), params.device, params.threads)
    raise RagBenchError(f"dense: the card's query_encoder kind {kind!r} is unknown; use dpr or sentence-transformers")


def text_provider(task, workdir: Path):
    """The `bm25` provider (pyserini backend), built through the registry and prepared on `task` in `workdir`: it
    reads passages from the task's Lucene index (its `passage_texts`)."""
    provider = build_provider("bm25", {"backend": "pyserini"})
    provider.prepare(task, workdir)
    return provider


class PrebuiltDense:
    """A task's prebuilt FAISS index, its row-to-doc-id table, the query encoder it was built for, and a text store."""

    def __init__(self, index, docids: np.ndarray, folder: Path, encoder, texts, params):
        self.index, self.docids, self.folder, self.encoder, self.texts, self.params = index, docids, folder, encoder, texts, params

    @classmethod
    def open(cls, task, params, workdir: Path, default_model: str) -> "PrebuiltDense":
        """Fetch (verified) and unpack the task's dense index if needed, load it, its doc ids and its query encoder."""
        if params.model != default_model:
            raise RagBenchError(f"dense: task {task.name}'s prebuilt index fixes its query encoder; drop -P model")
        settings = index_settings(task, "dense", "dense")
        if settings.get("texts") != "lucene":
            raise RagBenchError(f"dense: task {task.name}'s dense index must name where its texts are (texts: lucene)")
        folder = index_folder(task, "dense", "dense")
        missing = [name for name in (INDEX_FILE, DOCID_FILE) if not (folder / name).is_file()]
        if missing:
            raise RagBenchError(f"dense: the prebuilt index in {folder} lacks {', '.join(missing)} (pyserini's layout)")
        index = faiss_index.load(folder / INDEX_FILE)
        docids = read_docids(folder / DOCID_FILE)
        if len(docids) != index.ntotal:
            raise RagBenchError(f"dense: {folder} has {index.ntotal:,} vectors but {len(docids):,} doc ids")
        texts = text_provider(task, workdir / "texts")
        encoder = load_query_encoder(settings.get("query_encoder") or {}, params)
        return cls(index, docids, folder, encoder, texts, params)

    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        """Ranked hits (inner product) and their passages from the Lucene index's stored documents."""
        t0 = time.perf_counter()
        vectors = self.encoder.encode([q.text for q in questions], self.params.batch_size)
        if vectors.shape[1] != self.index.d:
            raise RagBenchError(f"dense: the query encoder gives {vectors.shape[1]}-d vectors, the index holds {self.index.d}-d")
        t1 = time.perf_counter()
        ranked = faiss_index.search(self.index, vectors, k)
        t2 = time.perf_counter()
        timings = {"encode": (t1 - t0) * 1000 / len(questions), "search": (t2 - t1) * 1000 / len(questions)}
        out = []
        for row in ranked:
            ids = [str(self.docids[r]) for r, _ in row]
            texts = evidence_store(self.texts.passage_texts(ids), self.params.evidence_bytes)
            out.append(ProvidedEvidence(hits=[Hit(d, s) for d, (_, s) in zip(ids, row)], evidence=texts,
                                        timings_ms=dict(timings)))
        return out

    def footprint(self) -> dict[str, int]:
        """The FAISS index and its doc ids; the passages' text lives in the Lucene index (counted as extra)."""
        return {"index": sum((self.folder / n).stat().st_size for n in (INDEX_FILE, DOCID_FILE)),
                "extra_text_index": self.texts.index.size_bytes()}

    def close(self) -> None:
        self.texts.close()

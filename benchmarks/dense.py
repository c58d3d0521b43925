"""Encoding throughput, query latency and footprint of the `dense` provider.

Side by side, in one process, on the first ``--passages`` passages of a task's
corpus (nq_5k by default), with the same encoder and batch size:

* ``direct``   -- ``SentenceTransformer.encode(prefix + text, batch_size, normalize_embeddings=True)``
  on a model already loaded: the floor for encoding;
* ``provider`` -- ``build_provider("dense") + prepare_provider`` into a fresh cache: model
  load, encoding (chunked, progress bar, memmap), FAISS index build and save.

The two take turns, ``--repeats`` times (order alternating), after a warm-up;
medians are reported. Harness overhead = provider / direct - 1. Query latency
is ``provider.provide`` for one question at a time (p50 / p95 over
``--queries`` test questions, split into query encoding and FAISS search) and
for batches of 32, with torch's thread count and with ``-P threads=1``. Footprint = index + text store, per 1,000 passages.
``query_vs_encoder``: the provider's per-question provide at batch 32 against the encoder's own batch forward
(``SentenceTransformer.encode`` of the same 32 prefixed questions), taking turns chunk by chunk; target <= 1.3x
(issue 32: what the harness adds to a query besides the encoder, i.e. FAISS search and evidence lookup).

    python benchmarks/dense.py --model minilm --passages 1000 --repeats 3 --queries 200
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from rag_bench.api import document_text
from rag_bench.paths import CACHE_DIR_ENV
from rag_bench.runner import build_provider, prepare_provider
from rag_bench.task_store import load_task


def sub_task(task, passages: int):
    """`task` with only its first `passages` passages (corpus hash recomputed for the provider cache)."""
    corpus = task.corpus[:passages]
    digest = hashlib.sha256("\n".join(p.doc_id for p in corpus).encode()).hexdigest()
    return dataclasses.replace(task, corpus=corpus, files_sha256={**task.files_sha256, "corpus.jsonl": digest})


def time_direct(model: SentenceTransformer, texts: list[str], batch_size: int) -> float:
    start = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - start


def time_provider(task, settings: dict[str, str]) -> tuple[float, object]:
    with tempfile.TemporaryDirectory(prefix="dense-bench-") as cache:
        previous = os.environ.get(CACHE_DIR_ENV)
        os.environ[CACHE_DIR_ENV] = cache
        try:
            provider = build_provider("dense", settings)
            start = time.perf_counter()
            info = prepare_provider("dense", provider, task)
            elapsed = time.perf_counter() - start
            assert not info["reused_cache"]
            return elapsed, provider
        finally:
            if previous is None:
                os.environ.pop(CACHE_DIR_ENV)
            else:
                os.environ[CACHE_DIR_ENV] = previous


def latency(provider, questions, batch: int) -> dict[str, float]:
    """Per-question wall ms of provide() (p50, p95) and its encode/search split (medians)."""
    walls, encode, search = [], [], []
    for start in range(0, len(questions), batch):
        chunk = questions[start : start + batch]
        t0 = time.perf_counter()
        out = provider.provide(chunk, 20)
        walls.append((time.perf_counter() - t0) * 1000 / len(chunk))
        encode.append(out[0].timings_ms["encode"])
        search.append(out[0].timings_ms["search"])
    return {
        "p50_ms": float(np.percentile(walls, 50)),
        "p95_ms": float(np.percentile(walls, 95)),
        "encode_p50_ms": statistics.median(encode),
        "search_p50_ms": statistics.median(search),
    }


def query_vs_encoder(provider, model: SentenceTransformer, questions, batch: int, repeats: int) -> dict[str, float]:
    """Median per-question ms of `provider.provide` and of the encoder's forward on the same prefixed questions at
    batch `batch`, in alternating turns (which goes first alternates too), and their ratio."""
    prefix = provider.model.query_prefix or ""
    chunks = [questions[start : start + batch] for start in range(0, len(questions), batch)]
    provided, encoded = [], []
    for turn in range(repeats):
        for i, chunk in enumerate(chunks):
            texts = [prefix + q.text for q in chunk]

            def one_provide():
                t0 = time.perf_counter()
                provider.provide(chunk, 20)
                provided.append((time.perf_counter() - t0) * 1000 / len(chunk))

            def one_encode():
                t0 = time.perf_counter()
                model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
                encoded.append((time.perf_counter() - t0) * 1000 / len(chunk))

            for step in ((one_provide, one_encode) if (turn + i) % 2 == 0 else (one_encode, one_provide)):
                step()
    p, e = statistics.median(provided), statistics.median(encoded)
    return {"provide_ms_per_q": p, "encoder_forward_ms_per_q": e, "ratio": p / e, "target": 1.3, "met": p / e <= 1.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--index", default="flat")
    parser.add_argument("--threads", default=None, help="torch threads for both sides (default: torch's)")
    args = parser.parse_args()

    task = sub_task(load_task(args.task), args.passages)
    settings = {"model": args.model, "batch_size": str(args.batch_size), "index": args.index}
    if args.threads:
        settings["threads"] = args.threads
        torch.set_num_threads(int(args.threads))
    probe = build_provider("dense", settings)
    texts = [probe.model.passage_prefix + document_text(p) for p in task.corpus]
    model = SentenceTransformer(probe.model.load_from(), device=None)
    time_direct(model, texts[: args.batch_size], args.batch_size)  # warm-up

    direct, harness, provider = [], [], None
    for repeat in range(args.repeats):
        if repeat % 2 == 0:
            direct.append(time_direct(model, texts, args.batch_size))
            seconds, provider = time_provider(task, settings)
            harness.append(seconds)
        else:
            seconds, provider = time_provider(task, settings)
            harness.append(seconds)
            direct.append(time_direct(model, texts, args.batch_size))
    d, h = statistics.median(direct), statistics.median(harness)

    questions = load_task(args.task).split("test")[: args.queries]
    with tempfile.TemporaryDirectory(prefix="dense-bench-") as cache:
        os.environ[CACHE_DIR_ENV] = cache
        provider = build_provider("dense", settings)
        prepare_provider("dense", provider, task)
        single = latency(provider, questions, 1)
        batched = latency(provider, questions, 32)
        versus_encoder = query_vs_encoder(provider, model, questions, 32, args.repeats)
        footprint = provider.footprint()
        one_thread = build_provider("dense", {**settings, "threads": "1"})
        prepare_provider("dense", one_thread, task)
        single_1t = latency(one_thread, questions, 1)
        batched_1t = latency(one_thread, questions, 32)
    per_1k = {part: value / 1e6 / (len(task.corpus) / 1000) for part, value in footprint.items()}

    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_avg_1m_at_end": os.getloadavg()[0], "python": platform.python_version()},
        "settings": {**settings, "passages": len(task.corpus), "repeats": args.repeats, "queries": len(questions)},
        "direct_encode_s": direct,
        "provider_prepare_s": harness,
        "direct_passages_per_s": len(texts) / d,
        "provider_passages_per_s": len(texts) / h,
        "harness_overhead_pct": (h / d - 1) * 100,
        "query_latency_batch1": single,
        "query_latency_batch32": batched,
        "query_vs_encoder": versus_encoder,
        "query_latency_batch1_threads1": single_1t,
        "query_latency_batch32_threads1": batched_1t,
        "torch_threads": torch.get_num_threads(),
        "footprint_mb_per_1k": {**per_1k, "total": sum(per_1k.values())},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

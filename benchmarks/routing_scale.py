"""Routing cost against the number of keys: the exact flat product vs FAISS HNSW and IVF, up to a million keys.

llm_memory routes a query by scoring every passage key (route_dim 128,
unit-norm): a flat index. This script simulates that at sizes the research
setting would reach and measures, per size N:

* ``exact`` -- `rag_bench_plugins.llm_memory.key_index.KeyIndex` below its threshold: ``torch.topk(queries @ keys.T, k)``;
* ``hnsw ef=E`` -- the same class above its threshold: FAISS ``IndexHNSWFlat`` (inner
  product, M and efConstruction of `KeyIndex`), searched with efSearch E;
* ``ivf nprobe=P`` -- FAISS ``IndexIVFFlat`` (inner product) with sqrt(N) lists trained
  on up to 64 keys per list, searched in P lists;

ms/query (queries in batches of ``--batch``, the runner's batch; medians over
``--repeats`` passes), recall@k and recall@1 of each approximate top-k against
the exact one, build seconds and index bytes.

Keys (``--keys``) are ``lowrank`` (near a 16-dimensional subspace, as text
embeddings and learned keys concentrate on few directions) or ``isotropic``
(normalised Gaussian vectors, no structure: the hard case for an approximate
index). Each query is a key plus noise of the same norm and distribution,
normalised (cosine about 0.7 with its key, as a trained router sees its
passage's key), so the exact top-1 is mostly the query's own key.

    OMP_NUM_THREADS=1 python benchmarks/routing_scale.py --sizes 10000,30000,100000,300000,1000000 \\
        --plot docs/benchmarks/routing_scale.png --json docs/benchmarks/routing_scale.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from rag_bench_plugins.llm_memory.key_index import HNSW_EF_CONSTRUCTION, HNSW_M, KeyIndex

RECALL_TARGET = 0.95


def unit_rows(rng: np.random.Generator, n: int, dim: int, chunk: int = 100_000) -> np.ndarray:
    """n isotropic unit vectors (float32), made in chunks so a million of them need one copy in memory."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def simulated(n: int, dim: int, queries: int, seed: int, kind: str, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit-norm keys and `queries` unit-norm queries, each query near one key (cosine about 0.7).

    ``isotropic``: Gaussian keys, normalised, no structure (the hard case for an
    approximate index). ``lowrank``: keys in a random `rank`-dimensional subspace
    plus isotropic noise of a fifth of their norm, normalised, the way text
    embeddings and learned keys concentrate on a few directions.
    """
    rng = np.random.default_rng(seed)
    keys = unit_rows(rng, n, dim) if kind == "isotropic" else lowrank_rows(rng, n, dim, rank)
    noise = unit_rows(rng, queries, dim) if kind == "isotropic" else lowrank_rows(rng, queries, dim, rank, basis_seed=seed)
    q = keys[rng.integers(0, n, size=queries)] + noise
    return keys, (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def lowrank_rows(rng: np.random.Generator, n: int, dim: int, rank: int, basis_seed: int | None = None,
                 chunk: int = 100_000) -> np.ndarray:
    """n unit vectors near a `rank`-dimensional subspace of R^dim fixed by `basis_seed` (default: the same for keys and queries)."""
    basis = np.linalg.qr(np.random.default_rng(basis_seed if basis_seed is not None else 0)
                         .standard_normal((dim, rank)))[0].T.astype(np.float32)  # (rank, dim), orthonormal rows
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        block = rng.standard_normal((m, rank), dtype=np.float32) @ basis / math.sqrt(rank)
        block += 0.2 * rng.standard_normal((m, dim), dtype=np.float32) / math.sqrt(dim)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def timed_search(search, queries: np.ndarray, batch: int, repeats: int) -> tuple[float, np.ndarray]:
    """Median ms per query over `repeats` passes in batches, and the rows of the last pass."""
    per_pass, rows = [], []
    for _ in range(repeats):
        rows = []
        start = time.perf_counter()
        for i in range(0, len(queries), batch):
            rows.append(np.asarray(search(queries[i : i + batch])))
        per_pass.append((time.perf_counter() - start) * 1000 / len(queries))
    return statistics.median(per_pass), np.concatenate(rows)


def recall(approx: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """Mean share of the exact top-k found, and share of queries whose exact top-1 is the approximate top-1."""
    k = exact.shape[1]
    found = [len(set(a.tolist()) & set(e.tolist())) / k for a, e in zip(approx, exact)]
    return float(np.mean(found)), float(np.mean(approx[:, 0] == exact[:, 0]))


def ivf_index(keys: np.ndarray, seed: int):
    nlist = max(1, round(math.sqrt(len(keys))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(keys.shape[1]), keys.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    sample = keys[np.random.default_rng(seed).choice(len(keys), size=min(len(keys), 64 * nlist), replace=False)]
    index.train(sample)
    index.add(keys)
    return index


def measure_size(n: int, args) -> list[dict]:
    keys, queries = simulated(n, args.dim, args.queries, args.seed, args.keys, args.rank)
    rows: list[dict] = []

    def row(method: str, build_s: float, nbytes: int, ms: float, found: np.ndarray | None, exact: np.ndarray) -> None:
        r_k, r_1 = recall(found, exact) if found is not None else (1.0, 1.0)
        rows.append({"n": n, "method": method, "build_s": build_s, "bytes": nbytes, "ms_per_query": ms,
                     f"recall@{args.k}": r_k, "recall@1": r_1})
        print(f"  N={n:>9,} {method:<14} build {build_s:7.2f} s  {nbytes / 2**20:8.1f} MiB  {ms:8.3f} ms/query  "
              f"recall@{args.k} {r_k:.3f}  recall@1 {r_1:.3f}", flush=True)

    start = time.perf_counter()
    exact_index = KeyIndex(torch.from_numpy(keys), threshold=n)
    build_s = time.perf_counter() - start
    ms, exact = timed_search(lambda q: exact_index.search(torch.from_numpy(q), args.k)[0], queries, args.batch,
                             args.repeats)
    row("exact", build_s, exact_index.nbytes(), ms, None, exact)
    del exact_index

    start = time.perf_counter()
    hnsw = KeyIndex(torch.from_numpy(keys), threshold=0, m=args.hnsw_m, ef_construction=args.ef_construction)
    build_s = time.perf_counter() - start
    nbytes = hnsw.nbytes()
    for ef in args.ef_search:
        hnsw.ef_search = ef
        ms, found = timed_search(lambda q: hnsw.search(torch.from_numpy(q), args.k)[0], queries, args.batch, args.repeats)
        row(f"hnsw ef={ef}", build_s, nbytes, ms, found, exact)
    del hnsw

    start = time.perf_counter()
    ivf = ivf_index(keys, args.seed)
    build_s = time.perf_counter() - start
    nbytes = int(faiss.serialize_index(ivf).nbytes)
    for nprobe in args.nprobe:
        ivf.nprobe = min(nprobe, ivf.nlist)
        ms, found = timed_search(lambda q: ivf.search(q, args.k)[1], queries, args.batch, args.repeats)
        row(f"ivf nprobe={nprobe}", build_s, nbytes, ms, found, exact)
    return rows


def threshold(rows: list[dict], k: int, budget_ms: float) -> list[str]:
    """Per size, exact vs the fastest approximate setting with recall@k >= RECALL_TARGET; and the size to switch at.

    The switch: the largest size measured at which exact routing still costs at
    most `budget_ms` per query; above it the approximate index is used.
    """
    lines, cheap = [], []
    for n in sorted({r["n"] for r in rows}):
        at = [r for r in rows if r["n"] == n]
        exact = next(r for r in at if r["method"] == "exact")["ms_per_query"]
        if exact <= budget_ms:
            cheap.append(n)
        good = [r for r in at if r["method"] != "exact" and r[f"recall@{k}"] >= RECALL_TARGET]
        best = min(good, key=lambda r: r["ms_per_query"], default=None)
        saved = exact - best["ms_per_query"] if best else 0.0
        payback = f"; its build pays back after {best['build_s'] * 1000 / saved:,.0f} queries" if saved > 0 else ""
        lines.append(f"N={n:,}: exact {exact:.3f} ms/query; " + (
            f"fastest with recall@{k} >= {RECALL_TARGET}: {best['method']} {best['ms_per_query']:.3f} ms/query "
            f"({exact / best['ms_per_query']:.1f}x faster, recall@{k} {best[f'recall@{k}']:.3f}){payback}" if best else
            f"no approximate setting reaches recall@{k} {RECALL_TARGET}"))
    lines.append(f"exact while it costs <= {budget_ms} ms/query: up to N={max(cheap):,} of the sizes measured" if cheap
                 else f"exact costs more than {budget_ms} ms/query at every size measured")
    return lines


def plot(rows: list[dict], k: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    kinds = {method.split()[0]: method for method in reversed(methods)}  # one build / memory line per index kind
    fig, ((speed, found), (build, memory)) = plt.subplots(2, 2, figsize=(12, 8.5))
    for method in methods:
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["n"])
        sizes = [r["n"] for r in mine]
        style = {"linewidth": 2.5, "color": "black"} if method == "exact" else {}
        speed.plot(sizes, [r["ms_per_query"] for r in mine], marker="o", label=method, **style)
        if method != "exact":
            found.plot(sizes, [r[f"recall@{k}"] for r in mine], marker="o", label=method)
        if method in kinds.values():
            if method != "exact":  # the exact index is the key matrix itself: nothing to build
                build.plot(sizes, [r["build_s"] for r in mine], marker="o", label=method.split()[0])
            memory.plot(sizes, [r["bytes"] / 2**20 for r in mine], marker="o", label=method.split()[0], **style)
    speed.set(xscale="log", yscale="log", ylabel="ms per query (batches of queries)", title="routing time")
    found.set(xscale="log", ylabel=f"recall@{k} against exact", title=f"recall of the approximate top-{k}")
    found.axhline(RECALL_TARGET, color="grey", linestyle=":", linewidth=1)
    build.set(xscale="log", yscale="log", ylabel="seconds", title="index build (one thread)")
    memory.set(xscale="log", yscale="log", ylabel="MiB", title="index memory")
    for ax in (speed, found, build, memory):
        ax.set_xlabel("keys N")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,30000,100000,300000,1000000")
    parser.add_argument("--dim", type=int, default=128, help="key dimension (llm_memory's route_dim)")
    parser.add_argument("-k", dest="k", type=int, default=20)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32, help="queries per search call")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the queries (median)")
    parser.add_argument("--ef-search", type=lambda s: [int(x) for x in s.split(",")], default=[32, 64, 128])
    parser.add_argument("--nprobe", type=lambda s: [int(x) for x in s.split(",")], default=[8, 32])
    parser.add_argument("--threads", type=int, default=1, help="torch and FAISS threads (builds and searches)")
    parser.add_argument("--keys", choices=("lowrank", "isotropic"), default="lowrank", help="simulated key distribution")
    parser.add_argument("--rank", type=int, default=16, help="subspace dimension of lowrank keys")
    parser.add_argument("--hnsw-m", type=int, default=HNSW_M)
    parser.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    parser.add_argument("--budget-ms", type=float, default=1.0,
                        help="routing time per query that exact search may take (1 ms: 2%% of issue 13's 50 ms)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, help="write the curves here (PNG)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="measure nothing: print the summary (and --plot) of rows written earlier with --json")
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        print("\n".join(threshold(saved["rows"], int(saved["args"]["k"]), args.budget_ms)))
        if args.plot:
            plot(saved["rows"], int(saved["args"]["k"]), args.plot, saved.get("title", saved["machine"]))
        return
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} thread(s); "
               f"Python {platform.python_version()}, torch {torch.__version__}, faiss {faiss.__version__}")
    keys = args.keys if args.keys == "isotropic" else f"lowrank (rank {args.rank})"
    print(f"{keys} keys, dim {args.dim}, k={args.k}, {args.queries} queries in batches of {args.batch}, median of "
          f"{args.repeats} passes; HNSW M={args.hnsw_m} efConstruction={args.ef_construction}; {machine}", flush=True)
    rows: list[dict] = []
    for n in [int(s) for s in args.sizes.split(",")]:
        rows += measure_size(n, args)
    print("\n".join(threshold(rows, args.k, args.budget_ms)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
    title = f"simulated {keys} unit-norm keys, dim {args.dim}, k={args.k}, batches of {args.batch}; {machine}"
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine,
                                         "title": title, "rows": rows}, indent=1))
    if args.plot:
        plot(rows, args.k, args.plot, title)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()

"""Index build time and queries/s: the harness's bm25 provider vs bm25s and pyserini called directly.

One process, one machine, the same questions (a task split, nq_5k test by
default) in the same batches for every system:

* ``harness bm25s``    -- ``build_provider("bm25") + prepare_provider`` into a fresh
  cache, queries through ``provider.provide`` (Hit objects and evidence texts included);
  ``harness bm25s, retrieve top-k`` is the same provider ranking through bm25s's
  ``retrieve`` (one top-k per query: the provider before issue 13, and the reference
  its batched top-k must equal);
* ``bm25s direct``     -- bm25s's Tokenizer + BM25 with the provider's tokenisation
  and k1/b, in memory; queries tokenised to ids and retrieved (indices + scores);
  ``bm25s direct, corpus=texts`` also has bm25s return the passage texts;
* ``harness pyserini`` -- the same provider with ``-P backend=pyserini``;
* ``pyserini direct``  -- pyserini's LuceneIndexer / LuceneSearcher.batch_search, reading
  each hit's docid and score (the results are Java objects until read).

Timings are medians over rounds of fresh builds and query passes (the systems
of a backend take turns, in rotating order) after an untimed warm-up round;
each round is one paired run, and the overhead of issue 13 is the median over
the rounds of each round's ratio (harness / direct, median pass times); the
bm25s systems run before the JVM starts. JVM start-up and pyserini's import are
reported once, apart from the build times. The machine may be shared, so CPU
time is reported beside wall time.
``--runner`` also times full ``rag-bench run`` executions (reader ``none``) and
splits their wall time into provide / record writing (fsync included) /
metrics / the rest.

    python benchmarks/bm25.py --task nq_5k --split test --rounds 5 --runner
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import platform
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable

import bm25s

from rag_bench.api import document_text
from rag_bench.errors import RagBenchError
from rag_bench.paths import CACHE_DIR_ENV
from rag_bench.runner import RunConfig, build_provider, execute, prepare_provider
from rag_bench.task_store import load_task
from rag_bench_plugins.bm25 import pyserini_backend
from rag_bench_plugins.bm25.bm25s_backend import make_tokenizer


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call, garbage from earlier calls collected first."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


@contextmanager
def scratch_dir():
    path = Path(tempfile.mkdtemp(prefix="rag-bench-bm25-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class System:
    """One contender: `build()` makes a fresh index (timed), `query(batch)` answers one batch."""

    def __init__(self, name: str, build: Callable[[Path], Callable[[list], object]]):
        self.name = name
        self._build = build
        self.query: Callable[[list], object] | None = None
        self.build_s: list[float] = []
        self.query_s: list[float] = []
        self.query_cpu_s: list[float] = []

    def build(self, folder: Path, record: bool = True) -> None:
        def run():
            self.query = self._build(folder)

        wall, _ = timed(run)
        if record:
            self.build_s.append(wall)


def harness_system(name: str, task, k: int, raw_params: dict[str, str], per_query_top_k: bool = False) -> System:
    """The provider; `per_query_top_k` has it rank through bm25s's `retrieve` (`Bm25sIndex.retrieve_rank`)."""
    def build(folder: Path):
        provider = build_provider("bm25", raw_params)
        with pyserini_backend.scoped_env(CACHE_DIR_ENV, str(folder)):
            prepare_provider("bm25", provider, task)
        if per_query_top_k:
            provider.index.rank = provider.index.retrieve_rank
        return lambda batch: provider.provide(batch, k)

    return System(name, build)


def bm25s_direct(task, k: int, params, with_texts: bool = False) -> System:
    """bm25s's Tokenizer + BM25; `with_texts` passes the passage texts as `corpus=` (bm25s returns them)."""
    def build(folder: Path):
        texts = [document_text(p) for p in task.corpus]
        tokenizer = make_tokenizer(params)
        ids = tokenizer.tokenize(texts, update_vocab=True, return_as="tuple", show_progress=False)
        retriever = bm25s.BM25(k1=params.k1, b=params.b, method="lucene")
        retriever.index(ids, show_progress=False)
        corpus = texts if with_texts else None

        def query(batch):
            tokens = tokenizer.tokenize([q.text for q in batch], update_vocab=False, show_progress=False)
            return retriever.retrieve(tokens, corpus=corpus, k=k, show_progress=False)

        return query

    return System("bm25s direct, corpus=texts" if with_texts else "bm25s direct", build)


def pyserini_direct(task, k: int, params) -> System:
    indexer_cls, searcher_cls = pyserini_backend.pyserini_api()

    def build(folder: Path):
        indexer = indexer_cls(str(folder / "index"), threads=1)
        indexer.add_batch_dict([{"id": p.doc_id, "contents": document_text(p)} for p in task.corpus])
        indexer.close()
        searcher = searcher_cls(str(folder / "index"))
        searcher.set_bm25(params.k1, params.b)

        def query(batch):
            results = searcher.batch_search([q.text for q in batch], [q.qid for q in batch], k=k, threads=1)
            # Hits are Java objects: reading docid and score is the least a caller does with them.
            return [[(hit.docid, hit.score) for hit in results[q.qid]] for q in batch]

        return query

    return System("pyserini direct", build)


def start_pyserini() -> tuple[float | None, str | None]:
    """Seconds to start the JVM and import pyserini, or the reason it is unavailable."""
    start = time.perf_counter()
    try:
        pyserini_backend.pyserini_api()
    except RagBenchError as exc:
        return None, str(exc)
    return time.perf_counter() - start, None


def rotated(systems: list[System], rep: int) -> list[System]:
    shift = rep % len(systems)
    return systems[shift:] + systems[:shift]


def measure(systems: list[System], batches: list[list], rounds: int, passes: int, warmup: int) -> None:
    """`rounds` of: build every system afresh (timed), then `passes` timed query passes of each.

    Fresh indexes every round spread memory-layout luck over the medians; `warmup`
    untimed rounds first also warm up the JVM's JIT. Within a pass the systems
    take turns batch by batch (in rotating order), so a neighbour's load on a
    shared machine falls on all of them alike; a system's pass time is the sum
    of its batches' times.
    """
    for rnd in range(warmup + rounds):
        record = rnd >= warmup
        with ExitStack() as stack:
            for system in rotated(systems, rnd):
                system.build(stack.enter_context(scratch_dir()), record=record)
            for rep in range(passes):
                gc.collect()
                wall = dict.fromkeys(systems, 0.0)
                cpu = dict.fromkeys(systems, 0.0)
                for number, batch in enumerate(batches):
                    for system in rotated(systems, rep + number):
                        w, c = time.perf_counter(), time.process_time()
                        system.query(batch)
                        wall[system] += time.perf_counter() - w
                        cpu[system] += time.process_time() - c
                if record:
                    for system in systems:
                        system.query_s.append(wall[system])
                        system.query_cpu_s.append(cpu[system])
            for system in systems:
                system.query = None  # drop this round's index before the next is built


class Stopwatch:
    """Wraps `owner.attr` so every call adds its wall time to `total`."""

    def __init__(self, owner, attr: str):
        self.owner, self.attr, self.total = owner, attr, 0.0
        self.original = getattr(owner, attr)

    def __enter__(self):
        original = self.original

        @functools.wraps(original)  # keeps the signature the runner inspects (evidence_k)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - start

        setattr(self.owner, self.attr, wrapper)
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.attr, self.original)


def measure_runner(task_name: str, split: str, batch_size: int, repeats: int) -> dict[str, float]:
    """Median seconds per part of a full `rag-bench run --provider bm25` (reader none), cache warm."""
    import rag_bench.run_dir as run_dir
    import rag_bench.runner as runner
    from rag_bench_plugins.bm25 import BM25Provider

    parts: dict[str, list[float]] = {}
    with scratch_dir() as runs:
        execute(RunConfig(provider="bm25", task=task_name, split=split, runs_dir=runs, batch_size=batch_size))
        for _ in range(repeats):
            cfg = RunConfig(provider="bm25", task=task_name, split=split, runs_dir=runs, batch_size=batch_size, overwrite=True)
            with Stopwatch(BM25Provider, "provide") as provide, Stopwatch(run_dir.RunDir, "append_records") as append, \
                    Stopwatch(run_dir.os, "fsync") as fsync, Stopwatch(runner, "compute_metrics") as metrics, \
                    Stopwatch(runner, "prepare_provider") as prepare:
                wall, _ = timed(lambda: execute(cfg))
            measured = {"total": wall, "prepare (cache hit)": prepare.total, "provide": provide.total,
                        "append_records": append.total, "of which fsync (all files)": fsync.total,
                        "compute_metrics": metrics.total}
            measured["rest (task load, records, manifest, reader none)"] = wall - sum(
                measured[k] for k in ("prepare (cache hit)", "provide", "append_records", "compute_metrics"))
            for key, value in measured.items():
                parts.setdefault(key, []).append(value)
    return {key: statistics.median(values) for key, values in parts.items()}


def overhead(harness: System, direct: System) -> str:
    """The harness's extra time over a direct call, three ways (the machine may be shared and noisy)."""
    def pct(ratio: float) -> str:
        return f"{100 * (ratio - 1):+.1f}%"

    med = statistics.median
    wall = paired_ratios(harness.query_s, direct.query_s, len(harness.build_s))
    cpu = paired_ratios(harness.query_cpu_s, direct.query_cpu_s, len(harness.build_s))
    return (
        f"{harness.name} over {direct.name}: query time, median of {len(wall)} paired runs, {pct(med(wall))} wall "
        f"({', '.join(pct(r) for r in wall)}), {pct(med(cpu))} CPU ({', '.join(pct(r) for r in cpu)}); "
        f"index build {pct(med(harness.build_s) / med(direct.build_s))} (the harness also writes its cache)."
    )


def paired_ratios(harness_s: list[float], direct_s: list[float], runs: int) -> list[float]:
    """Per round (one paired run: fresh builds, then passes taking turns), median pass time of harness / of direct."""
    passes = len(harness_s) // runs
    return [statistics.median(harness_s[i : i + passes]) / statistics.median(direct_s[i : i + passes])
            for i in range(0, len(harness_s), passes)]


def report(systems, n_questions, args, jvm_s, pyserini_missing, runner_parts) -> str:
    lines = [
        f"Task {args.task}/{args.split}: {n_questions} questions in batches of {args.batch_size}, k={args.k}; "
        f"medians of {args.rounds} builds and {args.rounds * args.passes} query passes ({args.rounds} rounds, "
        f"after {args.warmup} untimed).",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {platform.processor() or platform.machine()}, "
        f"bm25s {bm25s.__version__}.",
        "",
        "| system | index build (s) | queries/s (wall) | CPU ms/query |",
        "| --- | ---: | ---: | ---: |",
    ]
    for s in systems:
        qps = n_questions / statistics.median(s.query_s)
        cpu_ms = 1000 * statistics.median(s.query_cpu_s) / n_questions
        lines.append(f"| {s.name} | {statistics.median(s.build_s):.3f} | {qps:,.0f} | {cpu_ms:.3f} |")
    by_name = {s.name: s for s in systems}
    lines.append("")
    pairs = (("harness bm25s", "bm25s direct"), ("harness bm25s, retrieve top-k", "bm25s direct"),
             ("harness bm25s", "bm25s direct, corpus=texts"), ("harness pyserini", "pyserini direct"))
    for harness, direct in pairs:
        if harness in by_name:
            lines.append(overhead(by_name[harness], by_name[direct]))
    if jvm_s is not None:
        lines.append(f"JVM start + pyserini import (once per process, not in the build times): {jvm_s:.1f} s.")
    else:
        lines.append(f"pyserini rows skipped: {pyserini_missing}")
    if runner_parts:
        lines += ["", f"Full `rag-bench run --provider bm25` (reader none, median of {args.runner_repeats}, seconds):", "",
                  "| part | s |", "| --- | ---: |"]
        lines += [f"| {key} | {value:.3f} |" for key, value in runner_parts.items()]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("-k", dest="k", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed rounds (paired runs): fresh builds of every system, then query passes")
    parser.add_argument("--passes", type=int, default=10, help="timed query passes per system and round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (JIT warm-up)")
    parser.add_argument("--no-pyserini", action="store_true")
    parser.add_argument("--runner", action="store_true", help="also time full `rag-bench run` executions")
    parser.add_argument("--runner-repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    args = parser.parse_args(argv)

    task = load_task(args.task)
    questions = task.split(args.split)
    batches = [questions[i : i + args.batch_size] for i in range(0, len(questions), args.batch_size)]
    params = build_provider("bm25", {}).params
    # bm25s first, before the JVM exists: its JIT and GC threads would otherwise compete for the CPU.
    systems = [harness_system("harness bm25s", task, args.k, {}), bm25s_direct(task, args.k, params),
               harness_system("harness bm25s, retrieve top-k", task, args.k, {}, per_query_top_k=True),
               bm25s_direct(task, args.k, params, with_texts=True)]
    measure(systems, batches, args.rounds, args.passes, args.warmup)
    jvm_s, missing = (None, "--no-pyserini") if args.no_pyserini else start_pyserini()
    if jvm_s is not None:
        lucene = [harness_system("harness pyserini", task, args.k, {"backend": "pyserini"}), pyserini_direct(task, args.k, params)]
        measure(lucene, batches, args.rounds, args.passes, args.warmup)
        systems += lucene
    runner_parts = measure_runner(args.task, args.split, args.batch_size, args.runner_repeats) if args.runner else {}
    print(report(systems, len(questions), args, jvm_s, missing, runner_parts))
    if args.json:
        args.json.write_text(json.dumps({
            "args": {k: str(v) for k, v in vars(args).items()},
            "systems": {s.name: {"build_s": s.build_s, "query_s": s.query_s, "query_cpu_s": s.query_cpu_s} for s in systems},
            "jvm_start_s": jvm_s,
            "runner": runner_parts,
        }, indent=2))


if __name__ == "__main__":
    main()

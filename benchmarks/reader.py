"""Wall time of the `openai` reader loop against the loopback chat server with artificial latency.

Every call to the fixture server (tests/chat_server.py, run in a separate
process so it does not share the client's interpreter lock) takes `--latency`
seconds, so a perfect loop at concurrency C reads N questions in
N x latency / C. Two measurements per concurrency, the disk cache off:

* ``reader``  -- ``OpenAIReader.read`` over all N questions at once (5 bm25 passages each);
* ``runner``  -- a whole ``rag-bench run`` (``execute``: provider bm25, k=5, batches of
  ``--batch-size``) minus the same run with reader ``none`` (task loading, bm25,
  records and metrics), i.e. the wall time the reader adds to a run.

The check of the issue: at concurrency 16, wall <= 1.5 x N x latency / 16.

    python benchmarks/reader.py --questions 160 --latency 0.2 --concurrency 4,16,32
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.chat_server

from rag_bench.runner import RunConfig, build_provider, build_reader, execute, prepare_provider  # noqa: E402
from rag_bench.task_store import load_task  # noqa: E402
from tests.chat_server import ChatServer  # noqa: E402

BOUND = 1.5


def serve(latency_s: float, urls: "multiprocessing.Queue[str]", stop: "multiprocessing.Event") -> None:
    with ChatServer(latency_s=latency_s, default_answer="Paris") as server:
        urls.put(server.url)
        stop.wait()


def read_loop(url: str, questions, evidence, concurrency: int) -> float:
    reader = build_reader("openai", {"model": "test-model", "base_url": url, "concurrency": str(concurrency), "cache": "false"})
    reader.preflight()
    start = time.perf_counter()
    answers = reader.read(questions, evidence)
    wall = time.perf_counter() - start
    reader.close()
    assert all(a.error is None for a in answers), [a.error for a in answers if a.error]
    return wall


def run_wall(n: int, batch_size: int, reader: str, reader_params: dict[str, str]) -> float:
    """Wall seconds of one fresh `execute` (new runs directory)."""
    with tempfile.TemporaryDirectory(prefix="rag-bench-reader-bench-") as runs:
        cfg = RunConfig(provider="bm25", task="nq_5k", limit=n, ks=(5,), reader=reader, batch_size=batch_size,
                        reader_params=reader_params, runs_dir=Path(runs))
        start = time.perf_counter()
        result = execute(cfg)
        wall = time.perf_counter() - start
        assert result.metrics["counts"]["failed"] == 0
    return wall


def runner_loop(url: str, n: int, concurrency: int, batch_size: int, baseline_s: float) -> float:
    params = {"model": "test-model", "base_url": url, "concurrency": str(concurrency), "cache": "false"}
    return run_wall(n, batch_size, "openai", params) - baseline_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=160)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server takes per call")
    parser.add_argument("--concurrency", default="4,16,32")
    parser.add_argument("--batch-size", type=int, default=32, help="runner batch size (questions per read call)")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "test-key")

    task = load_task("nq_5k")
    questions = task.split("test")[: args.questions]
    provider = build_provider("bm25", {})
    prepare_provider("bm25", provider, task)
    evidence = [p.evidence for p in provider.provide(questions, 5)]
    provider.close()

    run_wall(len(questions), args.batch_size, "none", {})  # warm-up: imports, caches
    baseline_s = min(run_wall(len(questions), args.batch_size, "none", {}) for _ in range(3))
    rows = []
    urls: multiprocessing.Queue[str] = multiprocessing.Queue()
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(args.latency, urls, stop), daemon=True)
    server.start()
    url = urls.get(timeout=60)
    try:
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            ideal = len(questions) * args.latency / concurrency
            reader_s = read_loop(url, questions, evidence, concurrency)
            runner_s = runner_loop(url, len(questions), concurrency, args.batch_size, baseline_s)
            rows.append({"concurrency": concurrency, "ideal_s": ideal, "reader_s": reader_s, "runner_s": runner_s,
                         "reader_ratio": reader_s / ideal, "runner_ratio": runner_s / ideal})
    finally:
        stop.set()
        server.join(timeout=10)
    print(f"{len(questions)} questions, {args.latency * 1000:.0f} ms per call, runner batch size {args.batch_size}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"reader-none run baseline {baseline_s:.2f} s")
    print(f"{'concurrency':>11}  {'ideal s':>8}  {'reader s':>8}  {'ratio':>5}  {'runner s':>8}  {'ratio':>5}")
    for r in rows:
        print(f"{r['concurrency']:>11}  {r['ideal_s']:>8.2f}  {r['reader_s']:>8.2f}  {r['reader_ratio']:>5.2f}  "
              f"{r['runner_s']:>8.2f}  {r['runner_ratio']:>5.2f}")
    at16 = [r for r in rows if r["concurrency"] == 16]
    if at16:
        ok = max(at16[0]["reader_ratio"], at16[0]["runner_ratio"]) <= BOUND
        print(f"concurrency 16 within {BOUND}x of ideal: {'yes' if ok else 'NO'}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

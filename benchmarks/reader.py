"""Wall time of the `openai` reader loop against the loopback chat server with artificial latency.

Every call to the fixture server (tests/chat_server.py, run in a separate
process so it does not share the client's interpreter lock) takes `--latency`
seconds, so a perfect loop at concurrency C reads N questions in
N x latency / C (the ideal). Per concurrency, the disk cache off:

* ``reader``  -- ``OpenAIReader.read`` over all N questions at once (5 bm25 passages each);
* ``serial`` / ``overlap`` -- a whole ``rag-bench run`` (``execute``: provider bm25, k=5,
  batches of ``--batch-size``), with each batch provided after the previous one
  was read (``--no-overlap``, the runner before issue 13) and with the next
  batch's provide overlapping this batch's read (the default). Each is timed by
  the run itself: its question loop (``question_loop_s`` in the manifest's
  session: from the first batch's provide to the last record written, so the
  provide that nothing can overlap counts), and beside it what the run costs
  outside that loop (task loading, the reader's preflight, metrics), which no
  concurrency changes.

Serial and overlap runs take turns, `--repeats` of each, and the medians are
reported. The check of issue 13: the overlapped question loop within 1.1x of the ideal.

    python benchmarks/reader.py --questions 160 --latency 0.2 --concurrency 4,8,16,32
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.chat_server

from rag_bench.runner import RunConfig, build_provider, build_reader, execute, prepare_provider  # noqa: E402
from rag_bench.task_store import load_task  # noqa: E402
from tests.chat_server import ChatServer  # noqa: E402

BOUND = 1.1


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


def run_wall(url: str, n: int, concurrency: int, batch_size: int, overlap: bool) -> tuple[float, float]:
    """Wall seconds of one fresh `execute` (new runs directory) and of its question loop, as the run recorded it."""
    params = {"model": "test-model", "base_url": url, "concurrency": str(concurrency), "cache": "false"}
    with tempfile.TemporaryDirectory(prefix="rag-bench-reader-bench-") as runs:
        cfg = RunConfig(provider="bm25", task="nq_5k", limit=n, ks=(5,), reader="openai", batch_size=batch_size,
                        reader_params=params, runs_dir=Path(runs), overlap=overlap)
        start = time.perf_counter()
        result = execute(cfg)
        wall = time.perf_counter() - start
        assert result.metrics["counts"]["failed"] == 0
    return wall, result.manifest["sessions"][-1]["question_loop_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=160)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server takes per call")
    parser.add_argument("--concurrency", default="4,8,16,32")
    parser.add_argument("--batch-size", type=int, default=32, help="runner batch size (questions per read call)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode per concurrency (medians reported)")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "test-key")

    task = load_task("nq_5k")
    questions = task.split("test")[: args.questions]
    provider = build_provider("bm25", {})
    prepare_provider("bm25", provider, task)
    evidence = [p.evidence for p in provider.provide(questions, 5)]
    provider.close()

    rows = []
    urls: multiprocessing.Queue[str] = multiprocessing.Queue()
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(args.latency, urls, stop), daemon=True)
    server.start()
    url = urls.get(timeout=60)
    try:
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            ideal = len(questions) * args.latency / concurrency
            reader_s = statistics.median(read_loop(url, questions, evidence, concurrency) for _ in range(args.repeats))
            loops: dict[bool, list[float]] = {False: [], True: []}
            outside: list[float] = []
            run_wall(url, len(questions), concurrency, args.batch_size, True)  # warm-up: imports, caches
            for rep in range(args.repeats):
                for overlap in ((False, True) if rep % 2 == 0 else (True, False)):  # take turns
                    wall, loop = run_wall(url, len(questions), concurrency, args.batch_size, overlap)
                    loops[overlap].append(loop)
                    outside.append(wall - loop)
            serial_s, overlap_s = statistics.median(loops[False]), statistics.median(loops[True])
            rows.append({"concurrency": concurrency, "ideal_s": ideal, "reader_s": reader_s, "serial_s": serial_s,
                         "overlap_s": overlap_s, "reader_ratio": reader_s / ideal, "serial_ratio": serial_s / ideal,
                         "overlap_ratio": overlap_s / ideal, "outside_loop_s": statistics.median(outside)})
    finally:
        stop.set()
        server.join(timeout=10)
    print(f"{len(questions)} questions, {args.latency * 1000:.0f} ms per call, runner batch size {args.batch_size}, "
          f"medians of {args.repeats}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; seconds are question loops, as each run recorded them")
    print(f"{'concurrency':>11}  {'ideal s':>7}  {'reader s':>8}  {'ratio':>5}  {'serial s':>8}  {'ratio':>5}  "
          f"{'overlap s':>9}  {'ratio':>5}  {'outside loop s':>14}")
    for r in rows:
        print(f"{r['concurrency']:>11}  {r['ideal_s']:>7.2f}  {r['reader_s']:>8.2f}  {r['reader_ratio']:>5.2f}  "
              f"{r['serial_s']:>8.2f}  {r['serial_ratio']:>5.2f}  {r['overlap_s']:>9.2f}  {r['overlap_ratio']:>5.2f}  "
              f"{r['outside_loop_s']:>14.2f}")
    for r in rows:
        verdict = "yes" if r["overlap_ratio"] <= BOUND else "NO"
        print(f"concurrency {r['concurrency']}: question loop within {BOUND}x of ideal: {verdict} "
              f"(serial {r['serial_ratio']:.2f}x -> overlap {r['overlap_ratio']:.2f}x)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

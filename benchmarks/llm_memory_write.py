"""Seconds per document written: llm_memory's write (z_new optimised with theta frozen) beside dense's index insert.

Issue 30's target is <= 1 s per document on this 2-core CPU. `rag-bench write-curve` records each write's
wall-clock time, but the published curve ran beside other jobs; this script times the same write on a quiet machine,
with dense's insert of the same passages as the peer, in one process, taking turns:

* the held-out passages and the task view are the write curve's own (`select_held_out`, `task_without`), so the
  memory is the cached one that `rag-bench write-curve --task nq_5k --provider llm_memory -P max_train_steps=500
  -P closed_book_control=false -P control_every=0 --held-out 100 --batches 5` prepared;
* each timed write starts from a freshly loaded provider (loading is not timed) and writes the first batch of the
  held-out passages, at each step count of ``--steps`` for llm_memory, once for dense, timed by the write curve's
  own `timed_write` (the same seconds the published curve records);
* medians over ``--repeats``; seconds per document and per optimiser step, and the ratio to dense's insert.

    python benchmarks/llm_memory_write.py --steps 0,25,50 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics

from rag_bench.params import parse_steps
from rag_bench.preparation import build_provider, prepare_provider
from rag_bench.task_store import load_task
from rag_bench.write_curve.heldout import select_held_out, task_without
from rag_bench.write_curve.protocol import timed_write

LLM_MEMORY = {"max_train_steps": "500", "closed_book_control": "false", "control_every": "0"}
DENSE = {"model": "minilm"}


def write_seconds(name: str, settings: dict[str, str], view, passages, steps: int | None) -> float:
    """Seconds of one `write` into a freshly prepared provider (preparation, normally a cache load, untimed)."""
    provider = build_provider(name, dict(settings))
    try:
        prepare_provider(name, provider, view)
        return timed_write(provider, name, passages, steps, seed=0)["seconds"]
    finally:
        provider.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--held-out", type=int, default=100)
    parser.add_argument("--batches", type=int, default=5, help="the write curve's batches; the first one is written")
    parser.add_argument("--steps", default="0,25,50")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    steps = parse_steps(args.steps)
    task = load_task(args.task)
    held = select_held_out(task, args.held_out, args.batches, seed=0)
    view = task_without(task, held.doc_ids)
    passages = held.batches[0]
    write_seconds("dense", DENSE, view, passages[:1], None)  # warm-up: imports, model files in the page cache
    rows = []
    for count in steps:
        memory, dense = [], []
        for repeat in range(args.repeats):
            turns = [("llm_memory", LLM_MEMORY, count, memory), ("dense", DENSE, None, dense)]
            for name, settings, s, out in (turns if repeat % 2 == 0 else turns[::-1]):
                out.append(write_seconds(name, settings, view, passages, s))
        m, d = statistics.median(memory), statistics.median(dense)
        rows.append({"steps": count, "llm_memory_s_per_doc": m / len(passages),
                     "llm_memory_s_per_step": m / count if count else None,
                     "dense_s_per_doc": d / len(passages), "ratio_to_dense": m / d, "runs": args.repeats})
    result = {"task": args.task, "passages_written": len(passages), "rows": rows,
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "threads": os.environ.get("OMP_NUM_THREADS", "torch default")}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""`rag-bench memory train` run in this process with a probe, for tests/test_llm_memory_multiprocess.py.

Launched as ``accelerate launch --num_processes 2 --cpu tests/llm_memory_probe.py memory train ...``: every process
appends to ``$PROBE_DIR/rank<R>.jsonl`` one line per optimiser step (a sha256 of all its weights) and one per
checkpoint write (the resumable state, or the finished memory). ``PROBE_STALL_AFTER=N`` makes every process sleep
after step N, so that a test can kill the run at a known point.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    from rag_bench_plugins.llm_memory import system, train

    rank = int(os.environ.get("RANK", "0"))
    log = Path(os.environ["PROBE_DIR"]) / f"rank{rank}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    stall_after = int(os.environ.get("PROBE_STALL_AFTER", "0"))

    def write(row: dict) -> None:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def on_step(step: int, model) -> None:
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        write({"event": "step", "step": step, "sha256": digest.hexdigest(), "pid": os.getpid()})
        if stall_after and step >= stall_after:
            time.sleep(600)

    fit = system.MemorySystem.fit.__func__

    def probed_fit(cls, *args, **kwargs):
        return fit(cls, *args, **{**kwargs, "on_step": on_step})

    system.MemorySystem.fit = classmethod(probed_fit)
    save_state, save = train.save_state, system.MemorySystem.save

    def probed_save_state(folder, model, optimizer, scheduler, params, step, history):
        write({"event": "save_state", "step": step})
        return save_state(folder, model, optimizer, scheduler, params, step, history)

    def probed_save(self, folder):
        write({"event": "save", "folder": str(folder)})
        return save(self, folder)

    train.save_state = probed_save_state
    system.MemorySystem.save = probed_save

    from rag_bench.cli import main as cli_main

    sys.argv = ["rag-bench", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()

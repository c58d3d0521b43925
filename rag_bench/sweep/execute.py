"""Run a sweep's cells: each one an ordinary `rag-bench run` in its own process, finished cells skipped.

A cell runs as a child process (`python -m rag_bench.cli run ...`), so it is
exactly the run a user would type, a crash in one cell cannot take the sweep
down, and its manifest records the command that reproduces it. Its output
goes to `<out>/logs/<cell>.log`. A cell whose run folder already holds
metrics.json is skipped; a failed or interrupted one resumes from its records
on the next `rag-bench sweep`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from ..errors import EXIT_INCOMPLETE, RagBenchError
from ..params import check_keys
from ..registry import registry
from ..run_dir import RunDir
from ..runner import RunConfig, plan_run, split_reader_spec
from .spec import Cell, SweepSpec

#: A cell's result: "cached" (finished before), "done" (finished now) or "failed".
STATUSES = ("cached", "done", "failed")


@dataclass
class CellOutcome:
    """What became of one cell."""

    cell: Cell
    status: str
    run_path: Path | None
    seconds: float
    log: Path | None
    error: str | None = None


def cell_config(spec: SweepSpec, cell: Cell, runs_dir: Path) -> RunConfig:
    """The run configuration of a cell, as `rag-bench run` would build it from `cell_argv`."""
    reader, reader_params = split_reader_spec(spec.reader)
    return RunConfig(provider=spec.provider, task=spec.task, split=spec.split, limit=spec.limit, ks=spec.ks,
                     reader_k=spec.reader_k,
                     provider_params=dict(cell.provider_params), reader=reader,
                     reader_params={**reader_params, **spec.reader_params}, batch_size=spec.batch_size,
                     seed=spec.seed, runs_dir=runs_dir)


def cell_argv(spec: SweepSpec, cell: Cell, runs_dir: Path) -> list[str]:
    """The `rag-bench run` arguments that make the cell's run."""
    argv = ["run", "--provider", spec.provider, "--task", spec.task, "--reader", spec.reader]
    if spec.split:
        argv += ["--split", spec.split]
    argv += ["--reader-k", str(spec.reader_k)]
    if spec.limit is not None:
        argv += ["--limit", str(spec.limit)]
    if spec.ks:
        argv += ["-k", ",".join(map(str, spec.ks))]
    for key, value in cell.provider_params.items():
        argv += ["-P", f"{key}={value}"]
    for key, value in spec.reader_params.items():
        argv += ["-R", f"{key}={value}"]
    return argv + ["--batch-size", str(spec.batch_size), "--seed", str(spec.seed), "--runs-dir", str(runs_dir)]


def check_spec(spec: SweepSpec) -> None:
    """Problems shared by every cell (unknown provider, reader or setting name) stop the sweep before it starts."""
    provider = registry().providers.get(spec.provider)
    check_keys(provider.Params, [*spec.params, *spec.grid], f"provider {spec.provider}")
    reader, _ = split_reader_spec(spec.reader)
    check_keys(registry().readers.get(reader).Params, spec.reader_params, f"reader {reader}")


def is_finished(path: Path) -> bool:
    run = RunDir(path)
    return run.metrics_path.is_file() and run.exists()


def _error_line(log: Path) -> str:
    """The child's one-line `Error: ...` if it printed one, else the last line of its log."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or ["exited without output"])[-1][:500]


def _child_env(max_parallel: int) -> dict[str, str]:
    env = dict(os.environ)
    if max_parallel > 1 and "OMP_NUM_THREADS" not in env:
        # Parallel cells would each grab every core for BLAS and thrash; share them out instead.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max_parallel))
    return env


def cell_log(logs: Path, cell: Cell) -> Path:
    """Where a cell's child process writes its output."""
    return logs / f"{cell.slug}.log"


def run_cell(spec: SweepSpec, cell: Cell, runs_dir: Path, logs: Path, env: dict[str, str]) -> tuple[str, float, str | None]:
    """Run one cell in a child process; (status, seconds, error)."""
    logs.mkdir(parents=True, exist_ok=True)
    log = cell_log(logs, cell)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        code = subprocess.run([sys.executable, "-m", "rag_bench.cli", *cell_argv(spec, cell, runs_dir)],
                              stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - start
    if code == 0:
        return "done", seconds, None
    if code == EXIT_INCOMPLETE:  # finished, metrics written; some questions or judge scores are missing
        return "done", seconds, f"complete_with_failures: {_error_line(log)}"
    return "failed", seconds, f"exit {code}: {_error_line(log)}"


def run_sweep(spec: SweepSpec, out: Path, runs_dir: Path, max_parallel: int = 1,
              on_outcome: Callable[[CellOutcome], None] | None = None, progress: bool = True) -> list[CellOutcome]:
    """Run every unfinished cell (up to `max_parallel` at once) and return one outcome per cell, in grid order.

    A cell that fails is recorded with its error and the sweep goes on.
    `on_outcome` is called (from one thread at a time) as each cell settles.
    """
    if max_parallel < 1:
        raise RagBenchError("--max-parallel must be at least 1")
    check_spec(spec)
    logs = out / "logs"
    outcomes: dict[Cell, CellOutcome] = {}
    lock = threading.Lock()

    def settle(outcome: CellOutcome) -> None:
        with lock:
            outcomes[outcome.cell] = outcome
            if on_outcome is not None:
                on_outcome(outcome)

    todo: list[tuple[Cell, Path]] = []
    for cell in spec.cells():
        try:
            path = plan_run(cell_config(spec, cell, runs_dir)).path  # prepares the task once, before any child starts
        except RagBenchError as exc:  # e.g. a setting value this provider rejects in this combination only
            settle(CellOutcome(cell, "failed", None, 0.0, None, str(exc)))
            continue
        if is_finished(path):
            settle(CellOutcome(cell, "cached", path, 0.0, None))
        else:
            todo.append((cell, path))

    env = _child_env(max_parallel)
    with tqdm(total=len(todo), desc=f"sweep {spec.name}", unit="cell", disable=not progress) as bar, \
            ThreadPoolExecutor(max_workers=max_parallel) as pool:
        futures = {pool.submit(run_cell, spec, cell, runs_dir, logs, env): (cell, path) for cell, path in todo}
        for future in as_completed(futures):
            cell, path = futures[future]
            status, seconds, error = future.result()
            if status == "done" and not is_finished(path):
                status, error = "failed", f"the run exited cleanly but {path} has no metrics.json"
            settle(CellOutcome(cell, status, path, seconds, cell_log(logs, cell), error))
            bar.update(1)
    return [outcomes[cell] for cell in spec.cells()]

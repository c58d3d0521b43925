"""Run a sweep's cells: each one an ordinary `rag-bench run` in its own process, finished cells skipped.

A cell runs as a child process (`python -m rag_bench.cli run ...`), so it is
exactly the run a user would type, a crash in one cell cannot take the sweep
down, and its manifest records the command that reproduces it. Its output
goes to `<out>/logs/<cell>.log`. A cell whose run folder already holds
metrics.json is skipped; a failed or interrupted one resumes from its records
on the next `rag-bench sweep`. Where the child processes run (here, as Slurm
jobs, as Ray tasks) is the executor's business (executors.py).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from ..errors import RagBenchError
from ..params import check_keys, parse_params
from ..registry import registry
from ..run_plan import RunConfig, plan_run, split_reader_spec
from .executors import CellJob, CellResult, Executor, LocalExecutor, is_finished
from .spec import Cell, SweepSpec

#: A cell's result: "cached" (finished before), "done" (finished now) or "failed"; "pending" only while a cluster
#: still holds it (a Slurm sweep submitted with --no-wait).
STATUSES = ("cached", "done", "failed", "pending")


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


def cell_log(logs: Path, cell: Cell) -> Path:
    """Where a cell's child process writes its output."""
    return logs / f"{cell.slug}.log"


def cell_job(spec: SweepSpec, cell: Cell, path: Path | None, runs_dir: Path, logs: Path) -> CellJob:
    """What an executor needs to run the cell: its `rag-bench run` arguments, run folder (None: to be found where
    it runs), log, and its RunConfig."""
    return CellJob(name=cell.name, slug=cell.slug, run_path=path, argv=tuple(cell_argv(spec, cell, runs_dir)),
                   log=cell_log(logs, cell), config=cell_config(spec, cell, runs_dir))


def check_cell_settings(spec: SweepSpec, cell: Cell) -> None:
    """The cell's provider settings parse (a value out of range fails here, whatever machine it would run on)."""
    provider = registry().providers.get(spec.provider)
    parse_params(provider.Params, dict(cell.provider_params), f"provider {spec.provider}")


def run_sweep(spec: SweepSpec, out: Path, runs_dir: Path, max_parallel: int = 1,
              on_outcome: Callable[[CellOutcome], None] | None = None, progress: bool = True,
              executor: Executor | None = None) -> list[CellOutcome]:
    """Run every unfinished cell and return one outcome per cell, in grid order.

    `executor` decides where the cells run (default: `max_parallel` local processes at once). A cell that fails is
    recorded with its error and the sweep goes on. `on_outcome` is called (from one thread at a time) as each cell
    settles. A cell the executor left queued (Slurm, --no-wait) comes back "pending". With a remote executor, a cell
    whose settings parse but whose run this machine cannot plan (4-bit without CUDA on a login node) is planned on
    the node that runs it.
    """
    executor = executor or LocalExecutor(max_parallel)
    check_spec(spec)
    logs = out / "logs"
    outcomes: dict[Cell, CellOutcome] = {}
    lock = threading.Lock()

    def settle(outcome: CellOutcome) -> None:
        with lock:
            outcomes[outcome.cell] = outcome
            if on_outcome is not None:
                on_outcome(outcome)

    todo: dict[str, tuple[Cell, CellJob]] = {}
    elsewhere: list[str] = []
    for cell in spec.cells():
        try:
            path = plan_run(cell_config(spec, cell, runs_dir)).path  # prepares the task once, before any cell starts
        except RagBenchError as exc:  # e.g. a setting value this provider rejects in this combination only
            error = str(exc)
            if executor.remote:
                try:
                    check_cell_settings(spec, cell)
                except RagBenchError as bad:  # a bad setting fails on any machine: say which
                    error = str(bad)
                else:  # the settings are fine; this machine is not (e.g. no GPU): the node plans it
                    elsewhere.append(error)
                    todo[cell.slug] = (cell, cell_job(spec, cell, None, runs_dir, logs))
                    continue
            settle(CellOutcome(cell, "failed", None, 0.0, None, error))
            continue
        if is_finished(path):
            settle(CellOutcome(cell, "cached", path, 0.0, None))
        else:
            todo[cell.slug] = (cell, cell_job(spec, cell, path, runs_dir, logs))

    if elsewhere:
        print(f"{len(elsewhere)} cell(s) cannot be planned on this machine ({elsewhere[0]}); they are planned where "
              f"they run ({executor.name})", file=sys.stderr)
    with tqdm(total=len(todo), desc=f"sweep {spec.name} ({executor.name})", unit="cell",
              disable=not progress) as bar:

        def report(job: CellJob, result: CellResult) -> None:
            cell = todo[job.slug][0]
            status, error, path = result.status, result.error, result.run_path or job.run_path
            if status == "done" and (path is None or not is_finished(path)):
                status, error = "failed", f"the run exited cleanly but {path} has no metrics.json"
            settle(CellOutcome(cell, status, path, result.seconds, job.log, error))
            bar.update(1)

        executor.run([job for _, job in todo.values()], report)
    for cell, job in todo.values():
        if cell not in outcomes:
            outcomes[cell] = CellOutcome(cell, "pending", job.run_path, 0.0, job.log)
    return [outcomes[cell] for cell in spec.cells()]

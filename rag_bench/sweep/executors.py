"""Where a sweep's cells run: the Executor protocol, the local executor (the default), and what every executor shares.

Every executor runs the same thing per cell, `run_command`: the cell's `rag-bench run ...` in a child process with
its output in `<out>/logs/<cell>.log`. Only where that happens differs: a local process (`local`), a Slurm job
through submitit (`slurm`, slurm.py), or a Ray task (`ray`, ray_exec.py). A cell killed part-way (pre-empted,
cancelled, its process killed) resumes from its run folder's records when it runs again, so the slurm and ray
executors simply run it again, up to `retries` times. factory.py builds one by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from ..errors import EXIT_INCOMPLETE, RagBenchError
from ..run_dir import RunDir

#: The executors `rag-bench sweep --executor` knows.
EXECUTORS = ("local", "slurm", "ray")
#: The optional dependencies of the cluster executors.
CLUSTER_EXTRA = "pip install 'rag-bench[cluster]'"


@dataclass(frozen=True)
class CellJob:
    """One cell to run: its name, run folder, the `rag-bench run` arguments, its log file and working directory.

    `run_path`, `log` and the paths in `argv` may be relative to `cwd`, the sweep's own working directory, which a
    cluster's nodes must share. `run_path` is None when the sweep's machine could not plan the run (a setting only
    the compute node can honour, e.g. 4-bit on a login node without CUDA); the node then finds it from `config`,
    the cell's RunConfig.
    """

    name: str
    slug: str
    run_path: Path | None
    argv: tuple[str, ...]
    log: Path
    cwd: Path = field(default_factory=Path.cwd)
    config: Any = field(default=None, compare=False)

    @property
    def log_path(self) -> Path:
        """The log file, wherever the cell runs."""
        return self.cwd / self.log

    def command(self, python: str | None = None) -> list[str]:
        """The child process's command line, with `python` (default: this interpreter)."""
        return [python or sys.executable, "-m", "rag_bench.cli", *self.argv]


@dataclass(frozen=True)
class CellResult:
    """How a cell ended: status "done", "failed" or "cached" (found finished where it ran), seconds, a one-line
    error (or None), and its run folder when the node had to find it (else None: the job's own)."""

    status: str
    seconds: float
    error: str | None = None
    run_path: Path | None = None


class CellInterrupted(Exception):
    """A cell's process was killed by a signal (pre-emption, cancellation, the OOM killer): run it again to resume."""


#: Called by an executor as each cell settles.
Report = Callable[[CellJob, CellResult], None]


class Executor(Protocol):
    """Runs a sweep's unfinished cells and reports each one's result as it settles."""

    #: "local", "slurm" or "ray"
    name: str
    #: How many cells may run at once (None: as many as the engine schedules).
    max_parallel: int | None
    #: Whether cells run on other machines, which may honour settings this one cannot (a GPU's): a cell the sweep
    #: cannot plan here is then planned where it runs, instead of failing.
    remote: bool

    def run(self, jobs: Sequence[CellJob], report: Report) -> None:
        """Run `jobs` and call `report` once per job that settled (from one thread at a time).

        An executor that only submits (Slurm with wait=False) returns without reporting the jobs still queued.
        """


def is_finished(path: Path) -> bool:
    """Whether the run folder holds a finished run (its metrics.json)."""
    run = RunDir(path)
    return run.metrics_path.is_file() and run.exists()


def error_line(log: Path) -> str:
    """The child's one-line `Error: ...` if it printed one, else the last line of its log."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or ["exited without output"])[-1][:500]


def run_command(job: CellJob, env: Mapping[str, str] | None = None, append: bool = False,
                header: str | None = None) -> CellResult:
    """Run the cell's `rag-bench run` in a child process, its output in `job.log`.

    Exit 0 is "done"; exit 3 (finished with some questions failed) is "done" with the child's error line; any other
    exit is "failed". A child killed by a signal raises CellInterrupted (its records stay; a rerun resumes).
    `append` keeps the log of an earlier attempt and writes `header` first.
    """
    log = job.log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("a" if append else "w", encoding="utf-8") as handle:
        if header:
            # An earlier attempt may have stopped mid-line (a progress bar): start the header on a line of its own.
            handle.write(f"{chr(10) if handle.tell() else ''}== {header}\n")
            handle.flush()
        code = subprocess.run(job.command(), stdout=handle, stderr=subprocess.STDOUT, cwd=job.cwd,
                              env=dict(env) if env is not None else None).returncode
    seconds = time.perf_counter() - start
    if code < 0:
        raise CellInterrupted(f"cell {job.name}: its process was killed by signal {-code} after {seconds:.0f}s")
    if code == 0:
        return CellResult("done", seconds)
    if code == EXIT_INCOMPLETE:  # finished, metrics written; some questions or judge scores are missing
        return CellResult("done", seconds, f"complete_with_failures: {error_line(log)}")
    return CellResult("failed", seconds, f"exit {code}: {error_line(log)}")


def run_remote_cell(job: CellJob, env: Mapping[str, str], header: str) -> CellResult:
    """What a cluster runs per cell: find the run folder if the sweep could not, skip it if finished, else run it.

    The log is appended to (an earlier, interrupted attempt stays above `header`). Raises CellInterrupted as
    `run_command` does.
    """
    path = job.run_path
    if path is None:
        from ..run_plan import plan_run

        previous = os.getcwd()
        try:
            os.chdir(job.cwd)
            path = plan_run(job.config).path
        except RagBenchError as exc:
            return CellResult("failed", 0.0, f"cannot plan the run on {os.uname().nodename}: {exc}")
        finally:
            os.chdir(previous)
        if is_finished(path):
            return CellResult("cached", 0.0, run_path=path)
    result = run_command(job, env, append=True, header=header)
    return CellResult(result.status, result.seconds, result.error, path)


def thread_env(parallel: int) -> dict[str, str]:
    """This process's environment, with OMP_NUM_THREADS shared out among `parallel` cells unless the user set it."""
    env = dict(os.environ)
    if parallel > 1 and "OMP_NUM_THREADS" not in env:
        # Parallel cells would each grab every core for BLAS and thrash; share them out instead.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    return env


class LocalExecutor:
    """Cells as child processes of this one, up to `max_parallel` at once (the default executor)."""

    name = "local"
    remote = False

    def __init__(self, max_parallel: int = 1):
        if max_parallel < 1:
            raise RagBenchError("--max-parallel must be at least 1")
        self.max_parallel = max_parallel

    def run(self, jobs: Sequence[CellJob], report: Report) -> None:
        """Run every job here; a killed child is reported as failed (the next `rag-bench sweep` resumes it)."""
        env = thread_env(self.max_parallel)
        lock = threading.Lock()

        def one(job: CellJob) -> CellResult:
            start = time.perf_counter()
            try:
                return run_command(job, env)
            except CellInterrupted as exc:
                return CellResult("failed", time.perf_counter() - start, str(exc))

        with ThreadPoolExecutor(max_workers=self.max_parallel) as pool:
            futures = {pool.submit(one, job): job for job in jobs}
            for future in as_completed(futures):
                with lock:
                    report(futures[future], future.result())


def missing_engine(executor: str, module: str) -> RagBenchError:
    """The one error for an executor whose engine is not installed."""
    return RagBenchError(f"--executor {executor} needs the Python package {module!r}, which is not installed: "
                         f"run `{CLUSTER_EXTRA}` (or `pip install {module}`)")

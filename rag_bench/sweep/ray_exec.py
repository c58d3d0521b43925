"""`rag-bench sweep --executor ray`: each cell a Ray task that asks for the cell's CPUs, GPUs and memory.

The task runs the cell's own `rag-bench run` (executors.run_remote_cell) on whichever node Ray picks. A cell whose
process is killed (CellInterrupted) or whose worker dies is retried by Ray up to `retries` times, and resumes from
its run folder's records. The cluster is the one `--ray-address` (or $RAY_ADDRESS) names, one this process already
joined (`ray.init` before the sweep), or else a local one started for the sweep and stopped after it.

The sweep's working directory, `--runs-dir`, `--out`, the cache and rag-bench itself must be reachable from every
node at the same paths (a shared filesystem). The settings in RAG_BENCH_*, HF_*, PYTHONPATH and a few others are
passed to the tasks; secrets are not (set OPENAI_API_KEY on the cluster's nodes).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Sequence

from ..errors import RagBenchError
from ..manifest import now
from .executors import CellInterrupted, CellJob, CellResult, Report, missing_engine, run_remote_cell
from .resources import Resources

#: Environment variables passed from the sweep to its tasks: these names, and names with these prefixes.
FORWARD = ("PYTHONPATH", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RAGAS_DO_NOT_TRACK", "RAG_BENCH_")
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def import_ray() -> Any:
    """ray, or the one error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise missing_engine("ray", "ray") from None
    return ray


def forwarded_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The sweep's settings a task needs (never a variable whose name says it holds a secret)."""
    environ = dict(os.environ if environ is None else environ)
    return {name: value for name, value in environ.items()
            if (name in FORWARD or any(name.startswith(p) for p in FORWARD if p.endswith("_")))
            and not any(word in name.upper() for word in _SECRET_WORDS)}


def ray_cell(job: CellJob, env_vars: dict[str, str]) -> CellResult:
    """The Ray task: run the cell's `rag-bench run` (appending to its log) with the sweep's settings."""
    os.environ.update(env_vars)  # this job's worker: planning on the node reads the same settings as the cell
    return run_remote_cell(job, dict(os.environ), f"{now()} ray task on {socket.gethostname()} (pid {os.getpid()})")


class RayExecutor:
    """Cells as Ray tasks with resource requests (num_cpus, num_gpus, memory) on a Ray cluster."""

    name = "ray"
    remote = True

    def __init__(self, address: str | None = None, resources: Resources = Resources(), max_parallel: int | None = None,
                 retries: int = 2):
        self.ray = import_ray()
        if max_parallel is not None and max_parallel < 1:
            raise RagBenchError("--max-parallel must be at least 1")
        if retries < 0:
            raise RagBenchError("--retries must be >= 0")
        self.address, self.resources = address, resources
        self.max_parallel, self.retries = max_parallel, retries

    def options(self) -> dict[str, Any]:
        """The `ray.remote` options of every cell's task."""
        res = self.resources
        options: dict[str, Any] = {"num_cpus": res.cpus or 1, "num_gpus": res.gpus or 0, "max_retries": self.retries,
                                   "retry_exceptions": [CellInterrupted]}
        if res.mem_mb:
            options["memory"] = res.mem_mb * 1024 * 1024
        return options

    def _connect(self) -> bool:
        """Join (or start) the cluster; True when this call started it (and so must stop it)."""
        ray = self.ray
        if ray.is_initialized():
            return False
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
            raise RagBenchError(f"cannot start or join {where}: {str(exc).splitlines()[0]}; start one with "
                                "`ray start --head` and pass --ray-address HOST:6379, or leave --ray-address out "
                                "for a local one") from None
        return True

    def _check_fits(self) -> None:
        """A request no node of the cluster can meet would wait forever: say so instead."""
        total = self.ray.cluster_resources()
        for name, wanted in (("CPU", self.resources.cpus or 1), ("GPU", self.resources.gpus or 0)):
            if wanted > total.get(name, 0):
                raise RagBenchError(f"each cell asks Ray for {wanted} {name}(s) but the cluster has "
                                    f"{total.get(name, 0):g}; lower --cpus-per-cell/--gpus-per-cell (or resources: in "
                                    "the spec), or join a bigger cluster with --ray-address")

    def run(self, jobs: Sequence[CellJob], report: Report) -> None:
        """Submit the cells as tasks (at most `max_parallel` in flight), report each as it finishes."""
        ray = self.ray
        started = self._connect()
        try:
            if started:
                self._check_fits()
            task = ray.remote(ray_cell).options(**self.options())
            env = forwarded_env()
            queue, pending = list(jobs), {}
            while queue or pending:
                while queue and (self.max_parallel is None or len(pending) < self.max_parallel):
                    job = queue.pop(0)
                    pending[task.remote(job, env)] = (job, time.monotonic())
                done, _ = ray.wait(list(pending), num_returns=1)
                job, start = pending.pop(done[0])
                report(job, self._result(done[0], start))
        finally:
            if started:
                ray.shutdown()

    def _result(self, ref: Any, start: float) -> CellResult:
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
            detail = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
            if isinstance(cause, CellInterrupted):
                detail += f"; gave up after {self.retries + 1} attempt(s) (--retries {self.retries})"
            return CellResult("failed", time.monotonic() - start, f"ray task failed: {detail[:400]}")
        except exceptions.RayError as exc:  # worker or node lost more often than max_retries allows
            first = (str(exc).strip().splitlines() or [""])[0]
            return CellResult("failed", time.monotonic() - start, f"ray: {type(exc).__name__}: {first[:400]}")

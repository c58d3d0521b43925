"""`--executor NAME` -> an Executor: the one place that knows every executor (so none of them imports another)."""

from __future__ import annotations

from typing import Any

from ..errors import RagBenchError
from .executors import EXECUTORS, Executor, LocalExecutor


def make_executor(name: str, **options: Any) -> Executor:
    """The executor called `name`, built from the options that apply to it (the others are ignored).

    local: max_parallel. slurm: folder, resources, slurm, max_parallel, retries, wait, job_name.
    ray: address, resources, max_parallel, retries.
    """
    if name == "local":
        return LocalExecutor(options.get("max_parallel") or 1)
    if name == "slurm":
        from .slurm import SlurmExecutor  # submitit is imported when the executor is built, not before

        keys = ("folder", "resources", "slurm", "max_parallel", "retries", "wait", "job_name")
        return SlurmExecutor(**{k: options[k] for k in keys if k in options})
    if name == "ray":
        from .ray_exec import RayExecutor  # ray likewise

        keys = ("address", "resources", "max_parallel", "retries")
        return RayExecutor(**{k: options[k] for k in keys if k in options})
    raise RagBenchError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")

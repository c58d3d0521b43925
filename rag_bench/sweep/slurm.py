"""`rag-bench sweep --executor slurm`: each cell a Slurm job submitted through submitit (the first round as one array).

The job runs the cell's own `rag-bench run` (executors.run_remote_cell), so the cell's run folder, log and resume are
the local executor's. What Slurm adds:

- Pre-emption and time limits: submitit signals the job 90 s before it is stopped; the cell's `checkpoint` asks to be
  requeued as it is, and the requeued job resumes the run from its records (up to 3 times per job). A job that Slurm
  requeues itself (pre-emption with PreemptMode=REQUEUE, `scontrol requeue`) is waited for, not submitted again, even
  though its interrupted first attempt left a result file. tests/test_sweep_slurm.py runs both on a real Slurm.
- A job that ends without a result (cancelled, its node lost, its process killed) is submitted again, up to
  `retries` times; it resumes from its records too.
- `<out>/slurm/jobs.json` records each cell's job, so a second `rag-bench sweep` (after `--no-wait`, or after the
  first one was stopped) waits for the jobs still queued or running instead of submitting them twice.
- Job states come from `squeue` (then `sacct`), so a cluster without accounting works too. submitit's own files
  (`<out>/slurm/JOBID_0_log.out`, pickles) sit beside the ledger; the cell's output is in `<out>/logs/CELL.log`.

The sweep's working directory, its `--runs-dir`, `--out`, the cache and the Python environment must be on a
filesystem the compute nodes share, as submitit requires.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import RagBenchError
from ..jsonl import write_json_atomic
from ..manifest import now
from .executors import CellInterrupted, CellJob, CellResult, Report, missing_engine, run_remote_cell
from .resources import DEFAULT_SLURM_TIME_MIN, Resources, SlurmOptions

#: Job states in which Slurm still holds the job (it will run, or runs).
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING", "SUSPENDED",
          "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
#: Job states that end a job without a result for certain: the cell is submitted again at once.
GONE = {"CANCELLED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REVOKED"}
LEDGER = "jobs.json"


def import_submitit() -> Any:
    """submitit, or the one error that says how to install it."""
    try:
        import submitit
    except ImportError:
        raise missing_engine("slurm", "submitit") from None
    return submitit


@dataclass
class SlurmCell:
    """What a Slurm job runs: one cell (pickled by submitit, called on the compute node)."""

    job: CellJob

    def __call__(self) -> CellResult:
        """Run the cell's `rag-bench run` (appending to its log) and return how it ended."""
        env = dict(os.environ)
        if "OMP_NUM_THREADS" not in env and env.get("SLURM_CPUS_PER_TASK"):
            env["OMP_NUM_THREADS"] = env["SLURM_CPUS_PER_TASK"]
        job_id = env.get("SLURM_ARRAY_JOB_ID") and f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID')}"
        header = (f"{now()} slurm job {job_id or env.get('SLURM_JOB_ID', '?')} on {socket.gethostname()}"
                  f" (restart {env.get('SLURM_RESTART_COUNT', '0')})")
        return run_remote_cell(self.job, env, header)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Pre-empted or out of time: requeue the same cell; its run resumes from the records written so far."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SlurmCell(self.job))


def job_states(job_ids: Sequence[str]) -> dict[str, str]:
    """Each job's state (`RUNNING`, `CANCELLED`, ...) from squeue, then sacct; a job neither knows is left out."""
    states: dict[str, str] = {}
    if not job_ids:
        return states
    main_ids = ",".join(sorted({job_id.split("_")[0] for job_id in job_ids}))
    queries = [["squeue", "-h", "-r", "--states=all", "-u", getpass.getuser(), "-o", "%i|%T"],
               ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", main_ids]]
    for command in queries:
        if all(i in states for i in job_ids):
            break
        try:
            text = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in text.splitlines():
            job_id, _, state = line.strip().partition("|")
            if job_id in job_ids and state and job_id not in states:
                states[job_id] = state.split()[0].rstrip("+").upper()  # sacct: "CANCELLED by 0"
    return states


@dataclass
class _Tracked:
    """A submitted cell: its submitit job, which attempt it is, and since when Slurm no longer lists it as active."""

    job: CellJob
    handle: Any  # submitit.SlurmJob
    attempt: int
    ended_at: float | None = None


class SlurmExecutor:
    """Cells as Slurm jobs: resources from the spec or command line, a first round as one job array, waits for all.

    `folder` holds submitit's files and the ledger (`<out>/slurm`). `max_parallel` caps how many of the array's
    jobs run at once (None: Slurm decides). `retries`: how often a cell whose job ended without a result is
    submitted again. `wait=False` submits and returns (a later sweep collects). `grace_s`: how long a job that left
    the queue may take to show its result file (shared filesystems lag) before it counts as lost.
    """

    name = "slurm"
    remote = True

    def __init__(self, folder: Path, resources: Resources = Resources(), slurm: SlurmOptions = SlurmOptions(),
                 max_parallel: int | None = None, retries: int = 2, wait: bool = True, job_name: str = "rag-bench",
                 poll_s: float = 5.0, grace_s: float = 60.0):
        self.submitit = import_submitit()
        for tool in ("sbatch", "srun", "squeue"):
            if shutil.which(tool) is None:
                raise RagBenchError(f"--executor slurm needs Slurm's `{tool}` on PATH: run the sweep on a machine that "
                                    "submits to the cluster (a login node), or pick --executor local or ray")
        if max_parallel is not None and max_parallel < 1:
            raise RagBenchError("--max-parallel must be at least 1")
        if retries < 0:
            raise RagBenchError("--retries must be >= 0")
        self.folder = Path(folder).absolute()
        self.resources, self.slurm = resources, slurm
        self.max_parallel, self.retries, self.wait = max_parallel, retries, wait
        self.job_name, self.poll_s, self.grace_s = job_name, poll_s, grace_s
        self.ledger_path = self.folder / LEDGER

    def parameters(self) -> dict[str, Any]:
        """The submitit SlurmExecutor parameters of every cell's job."""
        res, opts = self.resources, self.slurm
        params: dict[str, Any] = {"job_name": self.job_name, "time": res.time_min or DEFAULT_SLURM_TIME_MIN,
                                  "stderr_to_stdout": True}
        if self.max_parallel:
            params["array_parallelism"] = self.max_parallel
        if res.cpus:
            params["cpus_per_task"] = res.cpus
        if res.gpus:
            params["gpus_per_node"] = res.gpus
        if res.mem_mb:
            params["mem"] = f"{res.mem_mb}M"
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(opts, key):
                params[key] = getattr(opts, key)
        if opts.setup:
            params["setup"] = list(opts.setup)
        if opts.options:
            params["additional_parameters"] = dict(opts.options)
        return params

    def _executor(self) -> Any:
        self.folder.mkdir(parents=True, exist_ok=True)
        executor = self.submitit.SlurmExecutor(folder=self.folder, max_num_timeout=3)
        try:
            executor.update_parameters(**self.parameters())
        except ValueError as exc:  # submitit checks every parameter by writing the sbatch file
            raise RagBenchError(f"bad Slurm setting: {str(exc).splitlines()[0]}") from None
        return executor

    def _submit(self, executor: Any, jobs: Sequence[CellJob]) -> list[Any]:
        try:
            if len(jobs) == 1:
                return [executor.submit(SlurmCell(jobs[0]))]
            with executor.batch():
                handles = [executor.submit(SlurmCell(job)) for job in jobs]
            return handles
        except Exception as exc:  # submitit's FailedJobError carries sbatch's own message
            message = " ".join(str(exc).split())[:800]
            raise RagBenchError(f"sbatch refused the sweep's job(s) ({self.parameters()}): {message}; fix the Slurm "
                                "settings (resources:/slurm: in the spec, or --slurm-*/--mem/--*-per-cell)") from None

    def _read_ledger(self) -> dict[str, dict[str, Any]]:
        """The cells' jobs as an earlier sweep recorded them (empty when there is none)."""
        import json

        try:
            return json.loads(self.ledger_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _write_ledger(self, submitted: dict[str, _Tracked], ledger: dict[str, dict[str, Any]]) -> None:
        """Record the jobs just submitted (per cell: job id, attempt, run folder) in `<out>/slurm/jobs.json`."""
        for slug, item in submitted.items():
            run = str(item.job.run_path) if item.job.run_path else None  # None: planned on the node
            ledger[slug] = {"cell": item.job.name, "job_id": item.handle.job_id, "attempt": item.attempt,
                            "run": run, "log": str(item.job.log), "submitted": now()}
        write_json_atomic(self.ledger_path, ledger)

    def _settle(self, item: _Tracked, states: dict[str, str]) -> CellResult | str | None:
        """The job's result, a reason it ended without one (str: run it again), or None while it is queued/running."""
        handle = item.handle
        if handle.paths.result_pickle.exists():
            try:
                return handle.result()
            except Exception as exc:  # the job raised: killed child (CellInterrupted) or submitit gave up requeueing
                text = str(exc)
                lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("-")]
                if CellInterrupted.__name__ in text or "UncompletedJobError" in text:
                    if states.get(handle.job_id) in ACTIVE:  # Slurm requeued the job itself (pre-emption, `scontrol
                        return None  # requeue`) or it is still ending: the same job runs again, do not submit it twice
                    return f"slurm job {handle.job_id} was interrupted ({lines[-1] if lines else 'no detail'})"
                return CellResult("failed", 0.0, f"slurm job {handle.job_id} raised: {(lines or ['?'])[-1][:400]}; "
                                  f"see {handle.paths.stdout}")
        state = states.get(handle.job_id, "UNKNOWN")
        if state in ACTIVE:
            item.ended_at = None
            return None
        if state in GONE:
            return f"slurm job {handle.job_id} ended {state}"
        item.ended_at = item.ended_at or time.monotonic()
        if time.monotonic() - item.ended_at > self.grace_s:
            return f"slurm job {handle.job_id} ended {state} without a result (see {handle.paths.stdout})"
        return None

    def run(self, jobs: Sequence[CellJob], report: Report) -> None:
        """Submit the cells not already queued (one array), then wait, resubmitting interrupted ones, reporting each."""
        executor = self._executor()
        ledger = self._read_ledger()
        known = {slug: entry["job_id"] for slug, entry in ledger.items() if slug in {j.slug for j in jobs}}
        states = job_states(list(known.values()))
        tracked: dict[str, _Tracked] = {}
        fresh: list[CellJob] = []
        for job in jobs:
            job_id = known.get(job.slug)
            if job_id and states.get(job_id) in ACTIVE:  # still queued or running from an earlier sweep: wait for it
                tracked[job.slug] = _Tracked(job, self.submitit.SlurmJob(folder=self.folder, job_id=job_id),
                                             ledger[job.slug].get("attempt", 1))
            else:
                fresh.append(job)
        submitted = {job.slug: _Tracked(job, handle, 1)
                     for job, handle in zip(fresh, self._submit(executor, fresh) if fresh else [])}
        tracked.update(submitted)
        self._write_ledger(submitted, ledger)
        if not self.wait:
            return
        start = {slug: time.monotonic() for slug in tracked}
        while tracked:
            states = job_states([item.handle.job_id for item in tracked.values()])
            for slug, item in list(tracked.items()):
                settled = self._settle(item, states)
                if settled is None:
                    continue
                if isinstance(settled, CellResult):
                    del tracked[slug]
                    report(item.job, settled)
                elif item.attempt > self.retries:
                    del tracked[slug]
                    report(item.job, CellResult("failed", time.monotonic() - start[slug],
                                                f"{settled}; gave up after {item.attempt} attempt(s) (--retries "
                                                f"{self.retries}); run the sweep again to resume it"))
                else:
                    try:
                        handle = self._submit(executor, [item.job])[0]
                    except RagBenchError as exc:
                        del tracked[slug]
                        report(item.job, CellResult("failed", time.monotonic() - start[slug], str(exc)))
                        continue
                    tracked[slug] = _Tracked(item.job, handle, item.attempt + 1)
                    self._write_ledger({slug: tracked[slug]}, ledger)
            if tracked:
                time.sleep(self.poll_s)

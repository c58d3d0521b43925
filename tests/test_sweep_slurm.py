"""`rag-bench sweep --executor slurm` on a real single-node Slurm (controller and node on this machine, as root).

The fixture starts munged, slurmctld and slurmd from a scratch folder (their own key, socket, ports and SLURM_CONF;
docs/OFFLINE.md's recipe) and stops them by their pid files after. The sweep has two cells of a deliberately slow
provider. One is stopped part-way: cancelled with scancel (the sweep submits it again), or signalled before its time
limit / requeued as on pre-emption (the same job runs again, nothing is submitted twice); either way it resumes from
its records and the summary collects both. `--no-wait` submits and returns; the same command then collects the jobs.
Skips with one line where Slurm cannot run (not installed, not root, daemons do not start).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import write_slice_card
from .plugin_dist import build_and_install, env_with
from .sweep_cells import SPEC, wait_for

SLOW_CELL = "delay=0.5"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 15, 0.3)


def _last_lines(folder: Path) -> str:
    """The daemons' last log lines, for a skip reason."""
    lines = []
    for daemon in ("slurmctld", "slurmd"):
        log = folder / f"{daemon}.log"
        text = log.read_text(errors="replace").strip() if log.is_file() else ""
        lines.append(f"{daemon}: {text.splitlines()[-1][:150] if text else 'no log'}")
    return "; ".join(lines)


def _slurm_conf(folder: Path, host: str) -> str:
    mem_mb = next(int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return "\n".join([
        "ClusterName=ragbench", f"SlurmctldHost={host}", "SlurmUser=root",
        # cred_expire is also how long a requeued job waits before it may start again (default 120 s); the
        # scheduler passes every 2 s instead of 60/30 s, so a requeued job starts again within seconds.
        "AuthType=auth/munge", f"AuthInfo=socket={folder}/munge.sock,cred_expire=10", "CredType=cred/munge",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "MpiDefault=none", "ReturnToService=2",
        "KillWait=5", "MinJobAge=600", "SchedulerType=sched/backfill",
        "SchedulerParameters=sched_interval=2,bf_interval=2",
        f"StateSaveLocation={folder}/state", f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        f"NodeName={host} CPUs={os.cpu_count() or 1} RealMemory={int(mem_mb * 0.8)} State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", "",
    ])


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running single-node Slurm; yields the environment (SLURM_CONF set) its client commands need."""
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"Slurm is not installed (no {', '.join(missing)}): apt-get install -y slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("a single-node Slurm needs root here (slurmd runs jobs as root)")
    pytest.importorskip("submitit", reason="submitit is not installed: pip install 'rag-bench[cluster]'")
    folder = tmp_path_factory.mktemp("slurm")
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(_slurm_conf(folder, socket.gethostname().split(".")[0]))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pids = [folder / "slurmd.pid", folder / "slurmctld.pid", folder / "munged.pid"]
    try:
        subprocess.run(["munged", f"--key-file={key}", f"--socket={folder}/munge.sock", f"--pid-file={pids[2]}",
                        f"--log-file={folder}/munged.log", f"--seed-file={folder}/munged.seed", "--force"],
                       check=True, capture_output=True, timeout=30)
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon], env=env, check=True, capture_output=True, timeout=60)

        def idle():
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
            return out.strip() == "idle"

        if not wait_for(idle, 120, 0.5):
            raise RuntimeError(f"its node is not idle after 120 s ({_last_lines(folder)})")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError) as exc:
        for pid in pids:
            _stop(pid)
        said = getattr(exc, "stderr", None) or b""
        said = said.decode(errors="replace").strip().splitlines()[-1:] if isinstance(said, bytes) else []
        pytest.skip(f"the single-node Slurm could not start: {exc}{': ' + said[0] if said else ''}")
    try:
        yield env
    finally:
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True)
        for pid in pids:
            _stop(pid)


@pytest.fixture(scope="module")
def slice_card(nq_5k, tmp_path_factory):
    return write_slice_card(tmp_path_factory.mktemp("task") / "slice", nq_5k, "nq_slice_slurm")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    return build_and_install(tmp_path_factory.mktemp("plugin"))


def sweep_command(*args) -> list[str]:
    return [sys.executable, "-c", "from rag_bench.cli import main; main()", "sweep", *map(str, args)]


def sweep_args(spec: Path, runs: Path, out: Path, *extra) -> list[str]:
    """The sweep's command line: the slow two-cell spec as Slurm jobs with small resources, no plots."""
    return sweep_command(spec, "--executor", "slurm", "--runs-dir", runs, "--out", out, "--cpus-per-cell", 1,
                         "--mem", "500M", "--slurm-time", "10", "--slurm-partition", "debug", "--no-plots", *extra)


def slow_cell_mid_run(ledger: Path, cwd: Path) -> dict:
    """The slow cell's ledger entry, once its job has written at least two records."""
    slow = wait_for(lambda: ledger.is_file() and json.loads(ledger.read_text()).get(SLOW_CELL), 300, 0.3)
    assert slow, f"no job submitted for {SLOW_CELL}"
    records = cwd / slow["run"] / "records.jsonl"
    assert wait_for(lambda: records.is_file() and records.read_text().count("\n") >= 2, 300, 0.1), \
        "the slow cell wrote no records"
    return slow


def sweep_setup(slurm: dict, slice_card: Path, plugin_site: Path, tmp_path: Path) -> tuple[Path, Path, Path, dict]:
    """The slow two-cell spec written under `tmp_path`, the runs and output folders, and the environment that
    reaches the test's Slurm with the plugin installed."""
    spec = tmp_path / "slow.yaml"
    spec.write_text(SPEC.format(task=slice_card))
    env = {**env_with(plugin_site), "SLURM_CONF": slurm["SLURM_CONF"]}
    return spec, tmp_path / "runs", tmp_path / "out", env


def stop_slow_cell_mid_sweep(stop: list[str], spec: Path, runs: Path, out: Path, env: dict):
    """Run the sweep, stop the slow cell's job with `stop + [job id]` once it is mid-run, and wait for the sweep:
    (the finished sweep process, its output, the slow cell's ledger entry before the stop)."""
    cwd = spec.parent
    sweep = subprocess.Popen(sweep_args(spec, runs, out), env=env, cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        slow = slow_cell_mid_run(out / "slurm" / "jobs.json", cwd)
        subprocess.run([*stop, slow["job_id"]], env=env, check=True)
        output, _ = sweep.communicate(timeout=480)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    return sweep, output, slow


def computed_in_last_attempt(log: str) -> int:
    """How many questions the cell's last attempt computed (the `N computed now` of its log's last lines)."""
    return int(log.rsplit(" computed now", 1)[0].rsplit(" ", 1)[1])


def test_a_cancelled_cell_is_resubmitted_and_resumes_and_the_summary_collects_both(slurm, slice_card, plugin_site,
                                                                                  tmp_path):
    out = tmp_path / "out"
    ledger = out / "slurm" / "jobs.json"
    sweep, output, slow = stop_slow_cell_mid_sweep(["scancel"], *sweep_setup(slurm, slice_card, plugin_site, tmp_path))
    assert sweep.returncode == 0, output
    assert "2 run now, 0 finished before, 0 failed" in output

    summary = json.loads((out / "summary.json").read_text())
    assert summary["executor"] == "slurm"
    assert [c["status"] for c in summary["cells"]] == ["done", "done"]
    assert all(c["metrics"]["recall@5"]["value"] is not None for c in summary["cells"])
    again = json.loads(ledger.read_text())[SLOW_CELL]
    assert again["attempt"] == 2 and again["job_id"] != slow["job_id"]
    # The first round went as one job array, with the resources the command line asked for.
    script = (out / "slurm" / f"{slow['job_id'].split('_')[0]}_submission.sh").read_text()
    for flag in ("--array=0-1", "--cpus-per-task=1", "--mem=500M", "--time=10", "--partition=debug",
                 "--job-name=rag-bench-slow-overlap"):
        assert flag in script

    # The resubmitted job resumed the run: its log has both attempts, and the second computed only what was left.
    log = (out / "logs" / "delay=0.5.log").read_text()
    assert log.count("== ") == 2 and f"slurm job {slow['job_id']}" in log
    assert 0 < computed_in_last_attempt(log) < 16
    manifest = json.loads((tmp_path / slow["run"] / "manifest.json").read_text())
    assert manifest["status"] == "complete"


def test_sbatch_refusing_the_jobs_is_one_clear_error(slurm, slice_card, plugin_site, tmp_path):
    spec = tmp_path / "slow.yaml"
    spec.write_text(SPEC.format(task=slice_card))
    env = {**env_with(plugin_site), "SLURM_CONF": slurm["SLURM_CONF"]}
    result = subprocess.run(sweep_command(spec, "--executor", "slurm", "--runs-dir", tmp_path / "runs",
                                          "--slurm-partition", "no-such-partition"),
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "sbatch refused" in errors[0], result.stderr
    assert "invalid partition" in errors[0].lower(), result.stderr


#: How Slurm stops a running job that is to run again. Time limit (or pre-emption with send_user_signal): submitit's
#: sbatch option `--signal=USR2@90` sends USR2 to the job's steps (not its batch shell) 90 s before; submitit's handler
#: calls the cell's `checkpoint` and `scontrol requeue`s the job itself (as SlurmJob._interrupt(timeout=True) does).
#: Pre-emption with PreemptMode=REQUEUE (or an admin's requeue): Slurm sends SIGTERM, which stops the cell's process,
#: so the first attempt leaves an "interrupted" result file, and Slurm puts the same job back in the queue.
STOPS = {"time-limit": ["scancel", "--signal=USR2"], "pre-emption": ["scontrol", "requeue"]}


@pytest.mark.parametrize("stop", STOPS)
def test_a_stopped_cell_is_requeued_as_the_same_job_and_resumes(stop, slurm, slice_card, plugin_site, tmp_path):
    """The slow cell's job, stopped mid-run as Slurm stops it, runs again as the same job (not a second submission)
    and resumes its run from its records; the sweep waits for it and collects both cells."""
    out = tmp_path / "out"
    ledger = out / "slurm" / "jobs.json"
    sweep, output, slow = stop_slow_cell_mid_sweep(STOPS[stop], *sweep_setup(slurm, slice_card, plugin_site, tmp_path))
    assert sweep.returncode == 0, output
    assert "2 run now, 0 finished before, 0 failed" in output
    summary = json.loads((out / "summary.json").read_text())
    assert [c["status"] for c in summary["cells"]] == ["done", "done"]
    # Requeued, not submitted again: the ledger keeps the first job (attempt 1), and there was one sbatch only.
    assert json.loads(ledger.read_text())[SLOW_CELL] == slow
    assert len(list((out / "slurm").glob("*_submission.sh"))) == 1
    submitit_log = (out / "slurm" / f"{slow['job_id']}_0_log.out").read_text()
    if stop == "time-limit":  # submitit's handler checkpointed the cell and requeued the job
        assert f"Requeued job {slow['job_id']}" in submitit_log, submitit_log
    # The same job ran again (Slurm's restart count 1) and resumed the run: it computed only what was left.
    log = (out / "logs" / "delay=0.5.log").read_text()
    headers = [line for line in log.splitlines() if line.startswith("== ")]
    assert len(headers) == 2 and all(f"slurm job {slow['job_id']} " in h for h in headers), headers
    assert headers[0].endswith("(restart 0)") and headers[1].endswith("(restart 1)"), headers
    assert 0 < computed_in_last_attempt(log) < 16, log
    manifest = json.loads((tmp_path / slow["run"] / "manifest.json").read_text())
    assert manifest["status"] == "complete"


def test_no_wait_submits_and_returns_and_the_same_command_collects_without_submitting_again(slurm, slice_card,
                                                                                              plugin_site, tmp_path):
    """`--no-wait` submits the cells and exits 0; the same command without it waits for the jobs in the ledger and
    writes the summary, submitting nothing again."""
    spec, runs, out, env = sweep_setup(slurm, slice_card, plugin_site, tmp_path)
    submit = subprocess.run(sweep_args(spec, runs, out, "--no-wait"), env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert submit.returncode == 0, submit.stderr
    ledger = out / "slurm" / "jobs.json"
    assert (f"2 cell(s) submitted to Slurm (jobs in {ledger}); run the same command without "
            "--no-wait to wait for them and write the summary") in submit.stdout
    assert not (out / "summary.json").exists()
    jobs = json.loads(ledger.read_text())
    assert sorted(jobs) == ["delay=0", SLOW_CELL] and all(entry["attempt"] == 1 for entry in jobs.values())

    collect = subprocess.run(sweep_args(spec, runs, out), env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=480)
    assert collect.returncode == 0, collect.stderr
    assert json.loads(ledger.read_text()) == jobs  # nothing submitted again
    assert len(list((out / "slurm").glob("*_submission.sh"))) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert [c["status"] for c in summary["cells"]] == ["done", "done"]
    assert "2 cells: " in collect.stdout and ", 0 failed -> " in collect.stdout
    log = (out / "logs" / f"{SLOW_CELL}.log").read_text()
    assert log.count("== ") == 1 and f"slurm job {jobs[SLOW_CELL]['job_id']} " in log
    assert f"cell {SLOW_CELL}: done" in collect.stderr  # waited for (still running when the second command began)

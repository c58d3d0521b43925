"""`rag-bench sweep --executor slurm` on a real single-node Slurm (controller and node on this machine, as root).

The fixture starts munged, slurmctld and slurmd from a scratch folder (their own key, socket, ports and SLURM_CONF;
docs/OFFLINE.md's recipe) and stops them by their pid files after. The sweep has two cells of a deliberately slow
provider; one is cancelled with scancel part-way, the sweep submits it again, it resumes from its records, and the
summary collects both. Skips with one line where Slurm cannot run (not installed, not root, daemons do not start).
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
        "AuthType=auth/munge", f"AuthInfo=socket={folder}/munge.sock", "CredType=cred/munge",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "MpiDefault=none", "ReturnToService=2",
        "KillWait=5", "MinJobAge=600", "SchedulerType=sched/backfill",
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


def test_a_cancelled_cell_is_resubmitted_and_resumes_and_the_summary_collects_both(slurm, slice_card, plugin_site,
                                                                                  tmp_path):
    spec = tmp_path / "slow.yaml"
    spec.write_text(SPEC.format(task=slice_card))
    runs, out = tmp_path / "runs", tmp_path / "out"
    env = {**env_with(plugin_site), "SLURM_CONF": slurm["SLURM_CONF"]}
    sweep = subprocess.Popen(sweep_command(spec, "--executor", "slurm", "--runs-dir", runs, "--out", out,
                                           "--cpus-per-cell", 1, "--mem", "500M", "--slurm-time", "10",
                                           "--slurm-partition", "debug", "--no-plots"),
                             env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ledger = out / "slurm" / "jobs.json"
        slow = wait_for(lambda: ledger.is_file() and json.loads(ledger.read_text()).get(SLOW_CELL), 300, 0.3)
        assert slow, f"no job submitted for {SLOW_CELL}"
        records = tmp_path / slow["run"] / "records.jsonl"
        assert wait_for(lambda: records.is_file() and records.read_text().count("\n") >= 2, 300, 0.1), \
            "the slow cell wrote no records"
        subprocess.run(["scancel", slow["job_id"]], env=env, check=True)
        output, _ = sweep.communicate(timeout=480)
    finally:
        if sweep.poll() is None:
            sweep.kill()
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
    computed = int(log.rsplit(" computed now", 1)[0].rsplit(" ", 1)[1])
    assert 0 < computed < 16
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

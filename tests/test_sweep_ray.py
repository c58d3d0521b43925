"""`rag-bench sweep --executor ray` on a local Ray cluster that the sweep starts (and stops) itself.

The same two-cell sweep as tests/test_sweep_slurm.py: one cell's process is killed part-way, Ray runs the task
again, the cell resumes from its records, and the summary collects both cells. Skips with one line where Ray is not
installed or cannot start here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import write_slice_card
from .plugin_dist import build_and_install, env_with
from .sweep_cells import SPEC, wait_for



@pytest.fixture(scope="module")
def slice_card(nq_5k, tmp_path_factory):
    return write_slice_card(tmp_path_factory.mktemp("task") / "slice", nq_5k, "nq_slice_ray")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    return build_and_install(tmp_path_factory.mktemp("plugin"))


def _slow_run(runs: Path) -> Path | None:
    """The slow cell's run folder once it has written two records."""
    for manifest in runs.glob("*/*/manifest.json"):
        try:
            settings = json.loads(manifest.read_text())["provider"]["settings"]
        except (OSError, ValueError, KeyError):
            continue
        records = manifest.parent / "records.jsonl"
        if settings.get("delay") == 0.5 and records.is_file() and records.read_text().count("\n") >= 2:
            return manifest.parent
    return None


def _cell_process(setting: str) -> int | None:
    """The pid of the `python -m rag_bench.cli run ... -P SETTING` process (the cell's own run)."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"rag_bench.cli" in argv and b"run" in argv and setting.encode() in argv:
            return int(proc.name)
    return None


def test_a_killed_cell_is_retried_by_ray_and_resumes_and_the_summary_collects_both(slice_card, plugin_site, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'rag-bench[cluster]'")
    spec = tmp_path / "slow.yaml"
    spec.write_text(SPEC.format(task=slice_card))
    runs, out = tmp_path / "runs", tmp_path / "out"
    env = {**env_with(plugin_site), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)  # a local cluster of the sweep's own, never one this machine may already run
    sweep = subprocess.Popen([sys.executable, "-c", "from rag_bench.cli import main; main()", "sweep", str(spec),
                              "--executor", "ray", "--cpus-per-cell", "1", "--runs-dir", str(runs), "--out", str(out),
                              "--no-plots"],
                             env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run = wait_for(lambda: _slow_run(runs) or sweep.poll() is not None, 300, 0.2)
        if sweep.poll() is not None:
            output = sweep.stdout.read()
            if "cannot start or join a local Ray cluster" in output:
                pytest.skip(output.strip().splitlines()[-1])
            pytest.fail(f"the sweep ended before the slow cell was killed:\n{output}")
        assert run, "the slow cell wrote no records"
        pid = _cell_process("delay=0.5")
        assert pid, "no process for the slow cell"
        os.kill(pid, signal.SIGKILL)
        output, _ = sweep.communicate(timeout=480)
    finally:
        if sweep.poll() is None:
            sweep.send_signal(signal.SIGINT)  # lets ray.shutdown() stop the local cluster
            try:
                sweep.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sweep.kill()
    assert sweep.returncode == 0, output
    assert "2 run now, 0 finished before, 0 failed" in output

    summary = json.loads((out / "summary.json").read_text())
    assert summary["executor"] == "ray"
    assert [c["status"] for c in summary["cells"]] == ["done", "done"]
    assert all(c["metrics"]["recall@5"]["value"] is not None for c in summary["cells"])

    # Ray ran the task again and it resumed: two attempts in the log, the second computing only what was left.
    log = (out / "logs" / "delay=0.5.log").read_text()
    assert log.count("\n== ") + log.startswith("== ") == 2 and "ray task on" in log
    computed = int(log.rsplit(" computed now", 1)[0].rsplit(" ", 1)[1])
    assert 0 < computed < 16
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"

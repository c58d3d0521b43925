"""A run killed with SIGKILL resumes to exactly the result of an uninterrupted run: the same scores file, byte for byte."""

import json
import os
import signal
import subprocess
import sys
import time

from .plugin_dist import build_and_install, env_with, rag_bench


def without_timings(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("timings_ms")
    return sorted(rows, key=lambda r: r["qid"])


def test_sigkill_then_resume_equals_uninterrupted(nq_5k, tmp_path):
    env = env_with(build_and_install(tmp_path / "plugin"))
    args = ["run", "--provider", "throwaway_overlap", "--task", "nq_5k", "--limit", "60",
            "--batch-size", "4", "-P", "delay=0.05"]
    killed_runs = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from rag_bench.cli import main; main()", *args, "--runs-dir", str(killed_runs)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    records = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(killed_runs.glob("nq_5k/*/records.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 12:
            records = found[0]
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert records is not None, "the run never got going"
    run_dir = records.parent
    done_before = len(records.read_text().splitlines())
    assert done_before < 60
    assert not (run_dir / "metrics.json").exists()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"

    resumed = rag_bench([*args, "--runs-dir", str(killed_runs)], env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{60 - done_before} computed now" in resumed.stdout

    clean_runs = tmp_path / "clean"
    clean = rag_bench([*args, "--runs-dir", str(clean_runs)], env)
    assert clean.returncode == 0, clean.stderr
    (clean_dir,) = (clean_runs / "nq_5k").iterdir()
    assert clean_dir.name == run_dir.name  # the directory is named from the configuration

    assert without_timings(run_dir / "records.jsonl") == without_timings(clean_dir / "records.jsonl")
    # The scores file is identical; what measures the machine (latency, prepare_s, peak memory) lives beside it.
    assert (run_dir / "metrics.json").read_bytes() == (clean_dir / "metrics.json").read_bytes()
    scores = json.loads((run_dir / "metrics.json").read_text())["aggregate"]
    assert "recall@5" in scores and not any(k.startswith(("latency", "prepare_s", "peak_rss")) for k in scores)
    measured = json.loads((run_dir / "measurements.json").read_text())["aggregate"]
    assert {"latency_p50_ms", "prepare_s", "peak_rss_mb"} <= set(measured) and "recall@5" not in measured
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"


def test_a_second_process_on_the_same_run_is_refused_and_a_killed_holder_leaves_no_stale_lock(nq_5k, tmp_path):
    env = env_with(build_and_install(tmp_path / "plugin"))
    runs = tmp_path / "runs"
    args = ["run", "--provider", "throwaway_overlap", "--task", "nq_5k", "--limit", "300", "--batch-size", "2",
            "-P", "delay=0.1", "--runs-dir", str(runs)]
    holder = subprocess.Popen([sys.executable, "-c", "from rag_bench.cli import main; main()", *args],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs.glob("nq_5k/*/records.jsonl")):
        time.sleep(0.05)
    try:
        second = rag_bench(args, env)
        assert second.returncode == 1
        errors = [line for line in second.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "another rag-bench process is running this configuration" in errors[0]
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    (run_dir,) = [p for p in (runs / "nq_5k").iterdir() if p.is_dir()]
    kept = len((run_dir / "records.jsonl").read_text().splitlines())
    assert kept >= 2  # the refused process wrote nothing over the holder's records

    resumed = rag_bench(args, env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"

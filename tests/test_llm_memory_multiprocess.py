"""Data-parallel training of llm_memory under `accelerate launch --num_processes 2` on CPU (gloo), at tiny size.

Each launch runs `rag-bench memory train` through tests/llm_memory_probe.py, which logs per process a sha256 of the
weights after every optimiser step and every checkpoint write. Checked: both processes hold identical weights after
each step, one process writes, the settings keep their meaning (global steps), and a run killed mid-way resumes from
its last checkpoint to the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "tests" / "llm_memory_probe.py"
STEPS, EVERY = 6, 2
SETTINGS = dict(base="tiny", tokenizer="corpus", tokenizer_vocab=500, tiny_hidden=32, tiny_layers=2, tiny_heads=2,
                tiny_kv_heads=1, tiny_intermediate=64, z_dim=16, route_dim=16, m_tokens=4, batch_size=8,
                max_train_steps=STEPS, warmup_steps=1, checkpoint_every=EVERY, pseudo_queries=2, max_query_tokens=16,
                max_evidence_tokens=12)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(out: Path, probe: Path, stall_after: int = 0) -> subprocess.Popen:
    """`accelerate launch --num_processes 2` of `rag-bench memory train` on a 16-passage slice of nq_5k, on CPU.

    (accelerate's `--cpu` flag alone starts one process without MPI; `--multi_gpu` on a machine without CUDA starts
    torchrun's processes, which accelerate then runs on the CPU with the gloo backend.)
    """
    args = [arg for key, value in SETTINGS.items() for arg in ("-P", f"{key}={value}")]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(PROBE),
               "memory", "train", "--task", "nq_5k", "--slice", "16", *args, "--out", str(out)]
    env = {**os.environ, "PROBE_DIR": str(probe), "PROBE_STALL_AFTER": str(stall_after), "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen, timeout: int = 600) -> str:
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output[-4000:]
    return output


def events(probe: Path, rank: int) -> list[dict]:
    path = probe / f"rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def digests(probe: Path, rank: int) -> dict[int, str]:
    return {e["step"]: e["sha256"] for e in events(probe, rank) if e["event"] == "step"}


@pytest.fixture(scope="module")
def straight(nq_5k, tmp_path_factory):
    """One uninterrupted 2-process run."""
    root = tmp_path_factory.mktemp("mp-straight")
    output = finish(launch(root / "out", root / "probe"))
    return root, output


def test_both_processes_hold_identical_weights_after_every_step(straight):
    root, _ = straight
    rank0, rank1 = digests(root / "probe", 0), digests(root / "probe", 1)
    assert sorted(rank0) == list(range(1, STEPS + 1))  # max_train_steps counts global optimiser steps
    assert rank0 == rank1
    assert len(set(rank0.values())) == STEPS  # the weights did change at every step


def test_one_process_writes_the_state_and_the_memory(straight):
    root, output = straight
    writes = [e for e in events(root / "probe", 0) if e["event"] != "step"]
    assert writes == [{"event": "save_state", "step": s} for s in range(EVERY, STEPS, EVERY)] + \
        [{"event": "save", "folder": str(root / "out")}]
    assert [e for e in events(root / "probe", 1) if e["event"] != "step"] == []
    card = json.loads((root / "out" / "memory.json").read_text())
    assert card["train"]["processes"] == 2 and card["train"]["steps"] == STEPS
    assert not (root / "out" / "train_state").exists()
    assert output.count("trained 6 steps") == 1  # one process reports


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(straight, tmp_path):
    root, _ = straight
    out, probe = tmp_path / "out", tmp_path / "probe"
    proc = launch(out, probe, stall_after=EVERY + 1)
    try:
        deadline = time.monotonic() + 600
        while not all(EVERY + 1 in digests(probe, rank) for rank in (0, 1)):
            assert proc.poll() is None, proc.communicate()[0][-4000:]
            assert time.monotonic() < deadline, "the launched run did not reach its stall"
            time.sleep(0.5)
    finally:
        # a crash: the launcher, and both training processes (torchrun starts each in a session of its own)
        os.killpg(proc.pid, signal.SIGKILL)
        workers = {e["pid"] for rank in (0, 1) for e in events(probe, rank) if "pid" in e}
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.communicate(timeout=60)
    assert len(workers) == 2
    assert not (out / "memory.json").exists()
    assert json.loads((out / "train_state" / "state.json").read_text())["step"] == EVERY

    (probe / "rank0.jsonl").rename(probe / "killed0.jsonl")
    (probe / "rank1.jsonl").rename(probe / "killed1.jsonl")
    output = finish(launch(out, probe))
    assert f"resumed from {EVERY}" in output
    expected = digests(root / "probe", 0)
    for rank in (0, 1):
        resumed = digests(probe, rank)
        assert sorted(resumed) == list(range(EVERY + 1, STEPS + 1))
        assert resumed == {step: expected[step] for step in resumed}
    a, b = load_file(str(root / "out" / "memory.safetensors")), load_file(str(out / "memory.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

"""Small helpers shared by tests."""

from __future__ import annotations

from pathlib import Path

from rag_bench.runner import RunConfig, execute


def run_quietly(tmp_path: Path, provider: str, task: str = "nq_5k", **kwargs):
    """Run a configuration into `tmp_path/runs` and return the RunResult."""
    cfg = RunConfig(provider=provider, task=task, runs_dir=tmp_path / "runs", **kwargs)
    return execute(cfg)

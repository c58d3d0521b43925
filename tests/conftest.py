"""Shared fixtures: an isolated cache per test session, the shared data directory, a prepared nq_5k."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"


def data_dir() -> Path | None:
    value = os.environ.get("RAG_BENCH_DATA_DIR")
    path = Path(value) if value else DEFAULT_DATA_DIR
    return path if (path / "raw").is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $RAG_BENCH_DATA_DIR); tests that need it skip cleanly without it."""
    path = data_dir()
    if path is None:
        pytest.skip("the shared data directory is not available; set RAG_BENCH_DATA_DIR")
    return path


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """One cache for the whole session (prepared tasks, provider state), never the user's."""
    cache = tmp_path_factory.mktemp("rag-bench-cache")
    os.environ["RAG_BENCH_CACHE_DIR"] = str(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    os.environ.pop("OPENAI_API_KEY", None)
    path = data_dir()
    if path is not None:
        os.environ["RAG_BENCH_DATA_DIR"] = str(path)
    return cache


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """A cache of this test's own, for tests that check preparation from scratch."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RAG_BENCH_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def nq_5k(shared_data, session_cache):
    """The prepared nq_5k task (built once per session from the shared raw files)."""
    from rag_bench.task_store import load_task

    return load_task("nq_5k")

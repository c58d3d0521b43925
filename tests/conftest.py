"""Shared fixtures: an isolated cache per test session, the shared data directory, a prepared nq_5k."""

from __future__ import annotations

import importlib.util
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


def user_ragchecker_python() -> str | None:
    """The RAGChecker environment that `rag-bench judges install-ragchecker` made in the user's own cache folder, when
    RAGChecker neither imports here nor is named by $RAG_BENCH_RAGCHECKER_PYTHON (looked up before the tests isolate
    the cache, so the README's install is found by the README's test command)."""
    try:
        from rag_bench_plugins.judges import ragchecker_env
    except ImportError:  # the judges' extra is not installed
        return None
    if os.environ.get(ragchecker_env.PYTHON_ENV) or importlib.util.find_spec("ragchecker") is not None:
        return None
    python = ragchecker_env.env_python(ragchecker_env.default_env())
    return str(python) if python.is_file() else None


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """One cache for the whole session (prepared tasks, provider state), never the user's; the user's RAGChecker
    environment stays found ($RAG_BENCH_RAGCHECKER_PYTHON points at it)."""
    ragchecker = user_ragchecker_python()
    if ragchecker is not None:
        os.environ["RAG_BENCH_RAGCHECKER_PYTHON"] = ragchecker
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


@pytest.fixture()
def needs_ragchecker() -> None:
    """Skips, with the one command that installs it, a test that runs the ragchecker judge where RAGChecker is in
    neither this environment nor one that `rag-bench judges install-ragchecker` made."""
    from rag_bench.errors import RagBenchError
    from rag_bench_plugins.judges.ragchecker_env import INSTALL, ragchecker_python

    try:
        ragchecker_python()
    except RagBenchError:
        pytest.skip(f"RAGChecker is not installed: run `{INSTALL}`")


@pytest.fixture(scope="session")
def nq_5k(shared_data, session_cache):
    """The prepared nq_5k task (built once per session from the shared raw files)."""
    from rag_bench.task_store import load_task

    return load_task("nq_5k")

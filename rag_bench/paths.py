"""Where rag-bench looks for data and keeps its caches (all overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "RAG_BENCH_DATA_DIR"
CACHE_DIR_ENV = "RAG_BENCH_CACHE_DIR"


def data_dir() -> Path | None:
    """The folder of raw source files (e.g. ../shared/data), or None when unset."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Root of prepared tasks, downloads and provider state."""
    value = os.environ.get(CACHE_DIR_ENV)
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "rag-bench"

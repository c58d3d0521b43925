"""Task cards (YAML) shipped with rag-bench; installed as the `rag_bench_tasks` package."""

from importlib.resources import files
from pathlib import Path


def card_path(name: str) -> Path:
    """Path of the shipped card `<name>.yaml`."""
    return Path(str(files(__name__).joinpath(f"{name}.yaml")))

"""Where RAGChecker runs: beside rag-bench when it imports here (the locked set), else in an environment of its own.

RAGChecker 0.1.9 depends on refchecker, which pins ``transformers<5`` and
``accelerate<0.32``: installed beside rag-bench it holds the whole stack back.
`rag-bench judges install-ragchecker` makes a virtual environment with
RAGChecker alone (its own transformers 4.x, spaCy, torch), and the
`ragchecker` judge then drives `ragchecker_worker.py` there (see that module).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from rag_bench.api import RagBenchError, cache_dir

#: Names the Python of the environment RAGChecker runs in (overrides both the in-process and the default environment).
PYTHON_ENV = "RAG_BENCH_RAGCHECKER_PYTHON"
RAGCHECKER = "ragchecker==0.1.9"
#: The versions of RAGChecker's dependencies seen to resolve and run together (pip freeze of such an environment).
CONSTRAINTS = Path(__file__).with_name("ragchecker-constraints.txt")
INSTALL = "rag-bench judges install-ragchecker"


def default_env() -> Path:
    """The environment `rag-bench judges install-ragchecker` makes unless told otherwise: under the cache folder."""
    return cache_dir() / "envs" / "ragchecker"


def env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ragchecker_python() -> Path | None:
    """The Python whose environment runs RAGChecker, or None to run it in this process.

    $RAG_BENCH_RAGCHECKER_PYTHON when set; else None when ragchecker imports
    here; else the environment `rag-bench judges install-ragchecker` made.
    """
    named = os.environ.get(PYTHON_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise RagBenchError(f"ragchecker: ${PYTHON_ENV}={named} is not a Python executable; point it at the "
                                f"python of a RAGChecker environment (`{INSTALL} --env DIR` makes one: DIR/bin/python)")
        return path
    if importlib.util.find_spec("ragchecker") is not None:
        return None
    python = env_python(default_env())
    if python.is_file():
        return python
    raise RagBenchError(
        f"ragchecker: RAGChecker is not installed. Its refchecker dependency pins transformers<5, so it gets an "
        f"environment of its own: run `{INSTALL}` (once; it makes {default_env()}), or set ${PYTHON_ENV} to the "
        f"python of an environment that has {RAGCHECKER}. (In an environment on the locked set, constraints-lock.txt, "
        f"`pip install 'rag-bench[ragchecker]'` puts it beside rag-bench instead.)")


def install(env: Path, pip_args: tuple[str, ...] = (), echo=print) -> Path:
    """Make (or update) the RAGChecker environment at `env`; returns its Python.

    The environment gets this Python's version, RAGChecker and its
    dependencies at the versions in ragchecker-constraints.txt, and this
    environment's torch version (so a CPU machine reuses its CPU wheel; pass
    pip options such as an index URL through `pip_args`).
    """
    python = env_python(env)
    if not python.is_file():
        echo(f"creating {env}")
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    requirements = [RAGCHECKER]
    torch = installed_version("torch")
    if torch:
        requirements.append(f"torch=={torch.split('+')[0]}")
    command = [str(python), "-m", "pip", "install", "-c", str(CONSTRAINTS), *requirements, *pip_args]
    echo(" ".join(command))
    done = subprocess.run(command)
    if done.returncode:
        raise RagBenchError(f"ragchecker: pip could not install RAGChecker into {env} (exit {done.returncode}); see "
                            "its output above")
    check = subprocess.run([str(python), "-c", "import ragchecker.evaluator"], capture_output=True, text=True)
    if check.returncode:
        raise RagBenchError(f"ragchecker: RAGChecker was installed into {env} but does not import: "
                            f"{check.stderr.strip().splitlines()[-1] if check.stderr.strip() else check.returncode}")
    return python


def installed_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None

"""`rag-bench judges ...`: set up what the judges need."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def judges():
    """Set up the LLM judges (ragas, ragchecker)."""


@judges.command("install-ragchecker", context_settings={"ignore_unknown_options": True})
@click.option("--env", "env", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where to make the environment (default: CACHE/envs/ragchecker, which the judge finds by itself; "
                   "elsewhere, set RAG_BENCH_RAGCHECKER_PYTHON=ENV/bin/python).")
@click.argument("pip_args", nargs=-1, type=click.UNPROCESSED)
def install_ragchecker(env, pip_args):
    """Give RAGChecker an environment of its own, which the `ragchecker` judge then drives.

    RAGChecker's refchecker pins transformers<5, so it does not install beside
    rag-bench on the current stack. This makes a virtual environment with
    RAGChecker 0.1.9 and its dependencies (ragchecker-constraints.txt) and
    this environment's torch version. PIP_ARGS after `--` go to pip, e.g.
    `-- --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple`
    for a small CPU torch on a CUDA machine.
    """
    from .ragchecker_env import PYTHON_ENV, default_env, install

    target = (env or default_env()).expanduser().resolve()
    python = install(target, tuple(pip_args), echo=click.echo)
    click.echo(f"RAGChecker is installed in {target}.")
    if env is not None and target != default_env().resolve():
        click.echo(f"The judge finds it with: export {PYTHON_ENV}={python}")
    else:
        click.echo("The ragchecker judge uses it whenever RAGChecker does not import beside rag-bench.")

"""A throwaway third-party plugin distribution, built and pip-installed the way a user adds a baseline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "rag-bench-throwaway"
version = "0.1.0"

[tool.setuptools]
py-modules = ["rag_bench_throwaway", "rag_bench_throwaway_broken"]

[project.entry-points.rag_bench]
throwaway = "rag_bench_throwaway"
throwaway_broken = "rag_bench_throwaway_broken"
"""

PLUGIN = '''
"""A word-overlap provider, slow on purpose when asked (delay seconds per question), failing when asked (fail)."""
import re
import time
from dataclasses import dataclass

from rag_bench.api import EvidenceProvider, Hit, ProvidedEvidence, hookimpl

WORD = re.compile(r"\\w+")


@dataclass(frozen=True)
class Params:
    delay: float = 0.0
    fail: bool = False


class Overlap(EvidenceProvider):
    Params = Params
    description = "ranks passages by shared words with the question"

    def prepare(self, task, workdir):
        self.passages = task.corpus
        self.words = [set(WORD.findall((p.title + " " + p.text).lower())) for p in task.corpus]

    def provide(self, questions, k):
        out = []
        if self.params.fail:
            raise RuntimeError("asked to fail")
        for q in questions:
            time.sleep(self.params.delay)
            query = set(WORD.findall(q.text.lower()))
            scores = [(len(query & words), -i) for i, words in enumerate(self.words)]
            top = sorted(scores, reverse=True)[:k]
            hits = [Hit(self.passages[-i].doc_id, float(s)) for s, i in top]
            out.append(ProvidedEvidence(hits=hits, evidence=[self.passages[-i].text for _, i in top]))
        return out


@hookimpl
def register_providers(register):
    register("throwaway_overlap", Overlap)
'''

BROKEN = '''
import a_dependency_that_is_not_installed  # noqa: F401
'''


def build_and_install(root: Path) -> Path:
    """Write the distribution under `root/src`, pip-install it into `root/site`; return the site folder."""
    src = root / "src"
    src.mkdir(parents=True)
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "rag_bench_throwaway.py").write_text(PLUGIN)
    (src / "rag_bench_throwaway_broken.py").write_text(BROKEN)
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site), str(src)],
        check=True,
    )
    return site


def env_with(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env


def rag_bench(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    """Run the installed console script's code in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", "from rag_bench.cli import main; main()", *args],
        env=env, capture_output=True, text=True, **kwargs,
    )

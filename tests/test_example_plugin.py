"""The example plugin distribution (examples/rag-bench-example-plugin) from pip install to a leaderboard row.

It is installed the way a user installs it (pip, no editable tricks) into a
folder of its own on PYTHONPATH, so the test leaves the environment as it was.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin_dist import env_with, rag_bench

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rag-bench-example-plugin"
LIMIT = 30


@pytest.fixture(scope="module")
def installed(tmp_path_factory, nq_5k) -> dict[str, str]:
    root = tmp_path_factory.mktemp("example-plugin")
    source = root / "src"
    shutil.copytree(EXAMPLE, source)  # building writes build/ and *.egg-info beside the sources
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site), str(source)],
        check=True, capture_output=True,
    )
    return env_with(site)


def test_the_plugin_is_listed_with_its_distribution(installed):
    done = rag_bench(["plugins"], installed)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("idf_overlap"))
    assert "rag-bench-example-plugin 0.1.0" in line and "provider:idf_overlap" in line


def test_the_plugin_runs_and_reaches_the_leaderboard(installed, tmp_path):
    runs = tmp_path / "runs"
    done = rag_bench(["run", "--provider", "idf_overlap", "--task", "nq_5k", "--limit", str(LIMIT),
                      "--reader", "none", "--runs-dir", str(runs)], installed)
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = (runs / "nq_5k").glob("idf_overlap__*")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["counts"] == {"questions": LIMIT, "ok": LIMIT, "failed": 0}
    # Word overlap finds most gold passages in the top 20 of a 5,000-passage corpus.
    assert metrics["aggregate"]["recall@20"]["value"] > 0.5
    assert metrics["aggregate"]["footprint_mb_per_1k.index"]["value"] > 0
    # Written against provide(questions, k): it still gives 20 texts; the reader would see the top 5.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["reader_k"] == 5 and manifest["ks"] == [1, 5, 20]
    assert "answer_recall@20" in metrics["aggregate"]
    assert manifest["provider"]["metadata"]["trained_on_corpus"] is False

    site = tmp_path / "site"
    built = rag_bench(["leaderboard", "build", str(runs), "--out", str(site)], installed)
    assert built.returncode == 0, built.stderr[-2000:]
    index = (site / "index.html").read_text(encoding="utf-8")
    assert f">idf_overlap</a>" in index
    assert f"rag-bench run --provider idf_overlap --task nq_5k --limit {LIMIT} --reader none" in index
    (page,) = (site / "runs").glob("nq_5k__idf_overlap__*.html")
    assert "from rag-bench-example-plugin 0.1.0" in page.read_text(encoding="utf-8")


def test_a_bad_setting_is_reported_in_one_line(installed, tmp_path):
    done = rag_bench(["run", "--provider", "idf_overlap", "--task", "nq_5k", "--limit", "2", "-P", "min_idf=-1",
                      "--runs-dir", str(tmp_path)], installed)
    assert done.returncode == 1
    assert "min_idf must be >= 0" in done.stderr and "Traceback" not in done.stderr

"""The example plugin distribution (examples/rag-bench-example-plugin) from pip install to a leaderboard row, and
in-process what it shows a third party: a `rag_bench.api.Retriever` written with `rag_bench.api` alone.

It is installed the way a user installs it (pip, no editable tricks) into a
folder of its own on PYTHONPATH, so the test leaves the environment as it was.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import rag_bench.api as api

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


# --- in-process: what the example shows a third party ------------------------------------------------------------


@pytest.fixture()
def example(monkeypatch):
    """The example's modules, imported from its source folder (the tests above install it with pip)."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    return importlib.import_module("rag_bench_example.provider"), importlib.import_module("rag_bench_example.plugin")


def test_the_example_imports_rag_bench_only_through_the_api():
    """tests/test_api_boundary.py checks every plugin; this names the example's own files, so the guide's claim
    ("only rag_bench.api") fails here first."""
    seen = set()
    for path in sorted((EXAMPLE / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                seen.update(alias.name for alias in node.names if alias.name.split(".")[0].startswith("rag_bench"))
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module.split(".")[0].startswith("rag_bench"):
                seen.add(node.module)
    assert seen == {"rag_bench.api"}


def test_the_example_provider_is_a_retriever_on_the_shared_base(example):
    provider, plugin = example
    registered = {}
    plugin.register_providers(lambda name, cls: registered.setdefault(name, cls))
    assert registered == {"idf_overlap": provider.IdfOverlapProvider}
    cls = provider.IdfOverlapProvider
    assert issubclass(cls, api.Retriever)
    # It writes what the base asks for (prepare, search, index_bytes) and takes the text store and footprint from it.
    own = set(vars(cls))
    assert {"prepare", "search", "index_bytes"} <= own and "footprint" not in own


CORPUS = [
    api.Passage("d0", "Paris", "Paris is the capital of France."),
    api.Passage("d1", "Lyon", "Lyon is a city in France."),
    api.Passage("d2", "Berlin", "Berlin is the capital of Germany."),
    api.Passage("d3", "Roma", "Rome is the capital of Italy."),
]


def test_the_example_ranks_by_summed_idf_and_hands_over_the_stored_passages(example, tmp_path):
    provider, _ = example
    idf = {w: math.log(1 + 4 / df) for w, df in {"capital": 3, "france": 2, "germany": 1, "paris": 1}.items()}
    retriever = provider.IdfOverlapProvider()
    with pytest.raises(api.RagBenchError, match=r"prepare\(\) must run"):
        retriever.provide([api.Question("q0", "capital of France?", ("Paris",), "test")], 3)
    retriever.prepare(SimpleNamespace(corpus=CORPUS), tmp_path)
    question = api.Question("q0", "What is the capital of France?", ("Paris",), "test")
    (got,) = retriever.provide([question], 3)
    # The question's words (stopwords out) are capital and france: d0 has both, d1 the rarer france, and d2 and d3
    # tie on capital, broken by corpus position.
    expected = [("d0", idf["capital"] + idf["france"]), ("d1", idf["france"]), ("d2", idf["capital"])]
    assert [h.doc_id for h in got.hits] == [d for d, _ in expected]
    assert [h.score for h in got.hits] == pytest.approx([s for _, s in expected])
    assert got.evidence == ["Paris\nParis is the capital of France.", "Lyon\nLyon is a city in France.",
                            "Berlin\nBerlin is the capital of Germany."]
    assert got.info == {"matched_words": 2}
    assert retriever.search(["germany"], 2) == [[(2, pytest.approx(idf["germany"]))]]
    index = tmp_path / provider.INDEX_FILE
    assert retriever.footprint() == {"index": index.stat().st_size, "text_store": retriever.store.stored_bytes}

    # A second run loads the index file and gives the same evidence.
    again = provider.IdfOverlapProvider()
    again.prepare(SimpleNamespace(corpus=CORPUS), tmp_path)
    assert again.provide([question], 3) == [got]

    # The write hook: a new passage is searchable at the next corpus position, the IDF weights are recomputed.
    cost = again.write([api.Passage("d4", "Madrid", "Madrid is the capital of Spain.")])
    assert cost.bytes_added > 0 and len(again.store) == 5
    (spain,) = again.provide([api.Question("q1", "capital of Spain", ("Madrid",), "test")], 1)
    assert [h.doc_id for h in spain.hits] == ["d4"] and spain.evidence == ["Madrid\nMadrid is the capital of Spain."]
    assert spain.hits[0].score == pytest.approx(math.log(1 + 5 / 4) + math.log(1 + 5 / 1))


def test_without_titles_the_store_holds_and_hands_over_the_text_alone(example, tmp_path):
    provider, _ = example
    retriever = provider.IdfOverlapProvider(provider.IdfOverlapParams(title_in_evidence=False))
    retriever.prepare(SimpleNamespace(corpus=CORPUS), tmp_path)
    (got,) = retriever.provide([api.Question("q0", "Roma", ("Rome",), "test")], 5)
    assert [h.doc_id for h in got.hits] == ["d3"]  # the title is still indexed
    assert got.evidence == ["Rome is the capital of Italy."]
    assert retriever.footprint()["text_store"] == sum(len(p.text.encode()) for p in CORPUS)

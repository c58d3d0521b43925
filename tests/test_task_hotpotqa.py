"""The hotpotqa_5k task: corpus, two gold passages per question, types, splits, evidence, all_gold@k."""

from __future__ import annotations

import collections
import gzip
import json

import pytest

from rag_bench.metric import RunContext
from rag_bench.registry import registry
from rag_bench.types import Question
from rag_bench_plugins.builtin_tasks.hotpotqa_5k import complete_records
from rag_bench_plugins.core_metrics import RetrievalMetric

from .helpers import run_quietly


@pytest.fixture(scope="module")
def hotpot(shared_data):
    from rag_bench.task_store import load_task

    return load_task("hotpotqa_5k")


def squash(text: str) -> str:
    return " ".join(text.split())


def test_corpus_holds_each_distinct_paragraph_once_and_both_gold_passages(hotpot):
    assert len(hotpot.questions) == 500
    assert len(hotpot.corpus) == len({(p.title, p.text) for p in hotpot.corpus}) == 4858
    by_id = hotpot.passages_by_id
    for q in hotpot.questions:
        assert len(set(q.gold_doc_ids)) == 2 and all(d in by_id for d in q.gold_doc_ids)
        assert q.answers and all(a.strip() for a in q.answers)


def test_types_are_the_first_250_rows_bridge_then_comparison_and_every_split_has_both(hotpot):
    types = [q.meta["type"] for q in hotpot.questions]
    assert types == ["bridge"] * 250 + ["comparison"] * 250
    counts = collections.Counter((q.split, q.meta["type"]) for q in hotpot.questions)
    assert counts == {(s, t): n for s, n in (("train", 175), ("dev", 25), ("test", 50)) for t in ("bridge", "comparison")}
    assert "first 250 bridge" in hotpot.card.description and "not a random sample" in hotpot.card.description


def test_official_records_give_sentence_evidence_drawn_from_the_gold_paragraphs(hotpot):
    by_id = hotpot.passages_by_id
    sentence_level = [q for q in hotpot.questions if q.meta["evidence"] == "sentences"]
    assert len(sentence_level) == 53
    shorter = 0
    for q in sentence_level:
        gold_text = squash(" ".join(by_id[d].text for d in q.gold_doc_ids))
        assert q.gold_evidence and all(squash(s) in gold_text for s in q.gold_evidence)
        shorter += len(squash(" ".join(q.gold_evidence))) < len(gold_text)
    assert shorter > 40  # a few questions are supported by every sentence of both paragraphs
    for q in hotpot.questions:
        if q.meta["evidence"] == "paragraphs":
            assert list(q.gold_evidence) == [by_id[d].text for d in q.gold_doc_ids]


def test_complete_records_stops_at_a_truncated_tail(tmp_path):
    records = [{"_id": str(i), "context": []} for i in range(3)]
    text = json.dumps(records)
    cut = tmp_path / "cut.json.gz"
    with gzip.open(cut, "wt", encoding="utf-8") as fh:
        fh.write(text[: text.rindex("{") + 5])
    whole = tmp_path / "whole.json"
    whole.write_text(text, encoding="utf-8")
    assert [r["_id"] for r in complete_records(cut)] == ["0", "1"]
    assert [r["_id"] for r in complete_records(whole)] == ["0", "1", "2"]


def test_all_gold_at_k_only_for_questions_with_several_gold_passages():
    ctx = RunContext(task=None, split="test", ks=(1, 2), provider="p", reader="none", reader_answers=False, efficiency={})
    two = Question("a", "q", ("x",), "test", gold_doc_ids=("d1", "d2"))
    one = Question("b", "q", ("x",), "test", gold_doc_ids=("d1",))
    record = {"hits": [["d2", 1.0], ["d1", 0.5]], "evidence": ["", ""]}
    scores = RetrievalMetric().score_one(record, two, ctx)
    assert (scores["all_gold@1"], scores["all_gold@2"], scores["recall@1"], scores["hit@1"]) == (0.0, 1.0, 0.5, 1.0)
    assert not any(key.startswith("all_gold") for key in RetrievalMetric().score_one(record, one, ctx))


def test_bm25_run_on_hotpotqa_reports_recall_hit_and_all_gold(hotpot, tmp_path):
    result = run_quietly(tmp_path, "bm25", task="hotpotqa_5k", limit=40)
    aggregate = result.metrics["aggregate"]
    for key in ("recall@20", "hit@20", "all_gold@2", "all_gold@20"):
        assert key in aggregate
    assert aggregate["hit@20"]["value"] >= aggregate["recall@20"]["value"] >= aggregate["all_gold@20"]["value"] > 0
    assert "hotpotqa_5k" in registry().tasks.names()

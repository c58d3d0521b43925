"""Retrieval metrics: hand-worked cases, and agreement with ranx on a real bm25 run."""

import json

import pytest
from ranx import Qrels, Run, evaluate

from rag_bench.scoring.retrieval import all_gold_at, has_answer, hit_at, mrr_at, ndcg_at, recall_at

from .helpers import run_quietly


def test_hand_worked_ranking_metrics():
    ranked = ["d3", "d1", "d7", "d2"]
    gold = {"d1", "d2"}
    assert recall_at(ranked, gold, 1) == 0.0
    assert recall_at(ranked, gold, 2) == 0.5
    assert recall_at(ranked, gold, 4) == 1.0
    assert hit_at(ranked, gold, 1) == 0.0 and hit_at(ranked, gold, 2) == 1.0
    assert all_gold_at(ranked, gold, 2) == 0.0 and all_gold_at(ranked, gold, 4) == 1.0
    assert mrr_at(ranked, gold, 4) == 0.5
    # DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    import math

    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at(ranked, gold, 10) == pytest.approx(expected)


def test_has_answer_matches_whole_tokens_only():
    assert has_answer("It was awarded to Wilhelm Conrad Röntgen, of Germany.", ["wilhelm conrad röntgen"])
    assert not has_answer("The year 19721 was odd", ["1972"])
    assert has_answer("In 1972, astronauts left.", ["1972"])
    assert not has_answer("anything", [""])


@pytest.mark.usefixtures("nq_5k")
def test_metrics_agree_with_ranx_on_a_bm25_run(tmp_path):
    result = run_quietly(tmp_path, "bm25", ks=(1, 5, 20))
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    qrels = Qrels({r["qid"]: {d: 1 for d in r["gold_doc_ids"]} for r in records})
    # strictly decreasing scores in our rank order, so ranx sees exactly our ranking
    run = Run({r["qid"]: {doc: 1.0 / (rank + 1) for rank, (doc, _) in enumerate(r["hits"])} for r in records})
    theirs = evaluate(qrels, run, ["recall@1", "recall@5", "recall@20", "hit_rate@5", "mrr@20", "ndcg@10"])
    ours = result.metrics["aggregate"]
    assert ours["recall@1"]["value"] == pytest.approx(theirs["recall@1"], abs=1e-9)
    assert ours["recall@5"]["value"] == pytest.approx(theirs["recall@5"], abs=1e-9)
    assert ours["recall@20"]["value"] == pytest.approx(theirs["recall@20"], abs=1e-9)
    assert ours["hit@5"]["value"] == pytest.approx(theirs["hit_rate@5"], abs=1e-9)
    assert ours["mrr@20"]["value"] == pytest.approx(theirs["mrr@20"], abs=1e-9)
    assert ours["ndcg@10"]["value"] == pytest.approx(theirs["ndcg@10"], abs=1e-6)
    # every aggregate carries a bootstrap interval around its value
    for name in ("recall@5", "ndcg@10", "evidence_rougeL", "answer_recall@5", "latency_p50_ms"):
        agg = ours[name]
        low, high = agg["ci95"]
        assert low <= agg["value"] <= high and agg["n"] == len(records)

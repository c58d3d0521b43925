"""evidence_rougeL equals Google rouge-score's ROUGE-L F1, on hand cases and on real passages."""

import random

import pytest
from rouge_score import rouge_scorer

from rag_bench.scoring.evidence import lcs_length, rouge_l

REFERENCE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def reference_score(prediction, gold):
    return REFERENCE.score(gold, prediction)["rougeL"].fmeasure


def test_lcs_hand_worked():
    assert lcs_length("abcbdab", "bdcaba") == 4  # the textbook example (CLRS)
    assert lcs_length([], ["a"]) == 0
    assert lcs_length(["x", "y"], ["y", "x"]) == 1


def test_edge_cases():
    assert rouge_l("", "Paris is the capital") == 0.0
    assert rouge_l("!!!", "Paris") == 0.0  # no alphanumeric tokens
    assert rouge_l("Paris is the capital", "Paris is the capital") == 1.0
    assert rouge_l("The cats were running", "the cat was running") == pytest.approx(reference_score("The cats were running", "the cat was running"))


def test_equals_rouge_score_on_real_passages(nq_5k):
    rng = random.Random(0)
    questions = rng.sample(nq_5k.questions, 150)
    passages = nq_5k.passages_by_id
    for q in questions:
        gold = " ".join(q.gold_evidence)
        for text in (passages[q.gold_doc_ids[0]].text, rng.choice(nq_5k.corpus).text, q.gold_evidence[0]):
            assert rouge_l(text, gold) == pytest.approx(reference_score(text, gold), abs=1e-12)

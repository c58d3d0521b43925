"""The llm_memory metric plugin: unsupported evidence share and usage entropy over Z, for llm_memory runs only."""

from __future__ import annotations

import math

import pytest

from rag_bench.metric import RunContext
from rag_bench.types import Passage, Question

from rag_bench_plugins.llm_memory.metrics import LLMMemoryMetric


class FakeTask:
    passages_by_id = {"a": Passage("a", "Paris", "Paris is the capital of France."),
                      "b": Passage("b", "Rome", "Rome is the capital of Italy.")}


def ctx(provider: str) -> RunContext:
    return RunContext(task=FakeTask(), split="test", ks=(1, 2), provider=provider, reader="none", reader_answers=False,
                      efficiency={"num_passages": 2})


def record(hits, evidence):
    return {"hits": [[d, 1.0] for d in hits], "evidence": evidence}


QUESTION = Question("q", "capital of france?", ("Paris",), "test")


def test_unsupported_share_counts_words_missing_from_the_routed_passage():
    rec = record(["a", "b"], ["Paris is the capital of Spain", "Rome is old"])
    scores = LLMMemoryMetric().score_one(rec, QUESTION, ctx("llm_memory"))
    assert scores["unsupported_share@1"] == pytest.approx(1 / 6)
    assert scores["unsupported_share"] == pytest.approx(2 / 9)


def test_usage_entropy_is_one_for_even_use_and_zero_for_collapse():
    metric = LLMMemoryMetric()
    even = metric.run_level([record(["a"], ["x"]), record(["b"], ["y"])], ctx("llm_memory"))
    collapsed = metric.run_level([record(["a"], ["x"]), record(["a"], ["y"])], ctx("llm_memory"))
    assert even["z_usage_entropy@1"].value == pytest.approx(1.0)
    assert collapsed["z_usage_entropy@1"].value == 0.0
    assert even["z_distinct@1"].value == 1.0 and collapsed["z_distinct@1"].value == 0.0
    assert not math.isnan(even["z_usage_entropy@2"].value)


def test_other_providers_get_nothing():
    metric = LLMMemoryMetric()
    rec = record(["a"], ["Paris"])
    assert metric.score_one(rec, QUESTION, ctx("bm25")) == {}
    assert metric.run_level([rec], ctx("bm25")) == {}

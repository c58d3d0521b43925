"""Which figures measure the machine (kept apart from the scores and never compared by verify)."""

from rag_bench.measurements import is_measurement, measured_prefixes, split_aggregates


def test_measured_names_match_whole_or_with_a_suffix_and_nothing_else():
    prefixes = ("latency", "prepare_s", "train_s")
    assert is_measurement("latency_p50_ms", prefixes) and is_measurement("latency.provide.routing_p50_ms", prefixes)
    assert is_measurement("prepare_s", prefixes) and is_measurement("train_s", prefixes)
    assert not is_measurement("train_steps", prefixes) and not is_measurement("prepare_something", prefixes)
    assert not is_measurement("recall@5", prefixes)


def test_llm_memory_training_seconds_are_a_measurement_and_its_step_count_a_score():
    assert "train_s" in measured_prefixes()  # declared by the llm_memory metric plugin
    scores, measured = split_aggregates({"train_s": 1261.0, "train_steps": 1500.0, "evidence_rougeL": 0.18})
    assert set(measured) == {"train_s"} and set(scores) == {"train_steps", "evidence_rougeL"}

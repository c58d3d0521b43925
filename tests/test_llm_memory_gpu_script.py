"""benchmarks/llm_memory_gpu.py: refuses without CUDA, and its code paths run on CPU in --smoke mode."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "llm_memory_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("llm_memory_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_without_cuda(bench, capsys):
    assert bench.main([]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_smoke_mode_runs_the_providers_training_and_provide_on_cpu(bench, nq_5k, tmp_path):
    out = tmp_path / "result.json"
    assert bench.main(["--smoke", "--task", "nq_5k", "--passages", "30", "--steps", "2", "--warmup", "1",
                       "--latency-batches", "1,2", "--latency-reps", "1", "-k", "2", "-P", "batch_size=4",
                       "-P", "max_new_tokens=3", "-P", "max_evidence_tokens=12", "-P", "m_tokens=4",
                       "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["task"] == "nq_5k" and result["passages"] == 30 and result["questions"] > 0
    mode = result["modes"]["bf16"]
    train = mode["training"]
    assert train["steps_timed"] == 2 and train["tokens_per_s"] > 0 and train["flops_per_token"] > 0
    assert train["gradient_checkpointing"] is True  # a pretrained base: the provider's default
    assert train["padded_tokens_per_s"] >= train["tokens_per_s"]
    assert [row["batch_size"] for row in mode["latency"]] == [1, 2]
    for row in mode["latency"]:  # the provider's path: reader depth, repetition penalty, its own timings
        assert row["k"] == 2 and row["repetition_penalty"] == 1.3 and row["max_new_tokens"] == 3
        assert row["ms_per_question"] > 0 and row["wall_ms_per_question"] >= row["ms_per_question"] * 0.5


def test_qwen3_8b_parameter_count_matches_the_published_size(bench):
    body = bench.non_embedding_params(bench.QWEN3_8B)
    embeddings = 2 * bench.QWEN3_8B["vocab_size"] * bench.QWEN3_8B["hidden_size"]  # untied input + output
    assert 8.1e9 < body + embeddings < 8.3e9  # Qwen3-8B: 8.2B parameters

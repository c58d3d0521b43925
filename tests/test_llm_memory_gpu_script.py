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


def test_smoke_mode_runs_training_step_and_evidence_latency_on_cpu(bench, tmp_path):
    out = tmp_path / "result.json"
    assert bench.main(["--smoke", "--batch-size", "2", "--seq-len", "40", "--new-tokens", "3", "--latency-batches", "1,2",
                       "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    mode = result["modes"]["bf16"]
    assert mode["training"]["tokens_per_s"] > 0 and mode["training"]["flops_per_token"] > 0
    assert [row["batch_size"] for row in mode["latency"]] == [1, 2]


def test_qwen3_8b_parameter_count_matches_the_published_size(bench):
    body = bench.non_embedding_params(bench.QWEN3_8B)
    embeddings = 2 * bench.QWEN3_8B["vocab_size"] * bench.QWEN3_8B["hidden_size"]  # untied input + output
    assert 8.1e9 < body + embeddings < 8.3e9  # Qwen3-8B: 8.2B parameters

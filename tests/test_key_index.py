"""KeyIndex: exact top-k equals torch.topk; the HNSW path (forced by a low threshold) finds most of the exact top-k."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rag_bench_plugins.llm_memory import key_index
from rag_bench_plugins.llm_memory.key_index import KeyIndex


def unit(rows: int, dim: int = 32, seed: int = 0) -> torch.Tensor:
    x = torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed))
    return x / x.norm(dim=1, keepdim=True)


def near(keys: torch.Tensor, count: int, seed: int = 1) -> torch.Tensor:
    """Queries close to random keys (as a trained router's queries are to their passage's key)."""
    g = torch.Generator().manual_seed(seed)
    picked = keys[torch.randint(0, len(keys), (count,), generator=g)]
    q = picked + 0.3 * unit(count, keys.shape[1], seed + 1)
    return q / q.norm(dim=1, keepdim=True)


def test_below_the_threshold_search_is_torch_topk_exactly():
    keys, queries = unit(500), near(unit(500), 16)
    index = KeyIndex(keys, threshold=1000)
    assert index.method == "exact" and len(index) == 500
    rows, scores = index.search(queries, 7)
    want = (queries @ keys.T).topk(7, dim=-1)
    assert torch.equal(rows, want.indices) and torch.equal(scores, want.values)
    assert index.nbytes() == 500 * 32 * 4 and index.recall(queries, 7) == 1.0


def test_numpy_keys_and_a_k_larger_than_the_keys():
    keys = unit(5).numpy()
    rows, scores = KeyIndex(keys).search(keys[:2], 10)
    assert rows.shape == (2, 5) and rows[:, 0].tolist() == [0, 1]  # each key's best match is itself
    assert torch.allclose(scores[:, 0], torch.ones(2))


def test_a_low_threshold_forces_hnsw_with_high_recall():
    pytest.importorskip("faiss")
    keys = unit(3000)
    queries = near(keys, 64)
    approx = KeyIndex(keys, threshold=100)
    assert approx.method == "hnsw"
    rows, scores = approx.search(queries, 10)
    exact_rows, exact_scores = KeyIndex(keys, threshold=10_000).search(queries, 10)
    found = np.mean([len(set(a.tolist()) & set(e.tolist())) / 10 for a, e in zip(rows, exact_rows)])
    assert found >= 0.9 and approx.recall(queries, 10) == pytest.approx(found)
    assert (rows[:, 0] == exact_rows[:, 0]).float().mean() >= 0.95
    # scores are the inner products of the rows returned, best first
    assert torch.allclose(scores, (queries.unsqueeze(1) * keys[rows]).sum(-1), atol=1e-5)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])


def test_adding_keys_numbers_them_on_and_crosses_the_threshold():
    pytest.importorskip("faiss")
    keys = unit(300)
    index = KeyIndex(keys[:200], threshold=250)
    assert index.method == "exact"
    index.add(keys[200:])
    assert index.method == "hnsw" and len(index) == 300
    rows, _ = index.search(keys[[10, 250, 299]], 1)
    assert rows[:, 0].tolist() == [10, 250, 299]


def test_without_faiss_it_warns_and_stays_exact(monkeypatch):
    monkeypatch.setattr(key_index, "_faiss", lambda: None)
    keys = unit(50)
    with pytest.warns(UserWarning, match="faiss is not installed"):
        index = KeyIndex(keys, threshold=10)
    assert index.method == "exact"
    rows, _ = index.search(keys[:3], 1)
    assert rows[:, 0].tolist() == [0, 1, 2]


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(N, d\) matrix"):
        KeyIndex(torch.ones(3))
    with pytest.raises(ValueError, match=r"queries must be \(B, 32\)"):
        KeyIndex(unit(4)).search(torch.ones(2, 3), 1)

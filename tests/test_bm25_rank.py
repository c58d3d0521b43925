"""The bm25 provider's batched top-k returns exactly what bm25s's own per-query retrieve returns, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from bm25s import selection

from rag_bench.runner import build_provider, prepare_provider
from rag_bench_plugins.bm25.bm25s_backend import top_k


@pytest.mark.parametrize("k", [1, 3, 20])
def test_top_k_equals_bm25s_topk_row_by_row_with_many_ties(k):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(64, 500)).astype(np.float32)  # four distinct values: ties everywhere
    scores[::7] = 0.0  # and rows with nothing but ties
    positions, values = top_k(scores, k)
    for row, got_pos, got_val in zip(scores, positions, values):
        want_val, want_pos = selection.topk(row, k, backend="numpy", sorted=True)
        assert np.array_equal(got_pos, want_pos) and np.array_equal(got_val, want_val)


@pytest.fixture(scope="module")
def index(nq_5k, tmp_path_factory):
    provider = build_provider("bm25", {})
    prepare_provider("bm25", provider, nq_5k)
    yield provider.index
    provider.close()


@pytest.mark.parametrize("k", [1, 20])
def test_rank_equals_bm25s_retrieve_on_the_nq5k_test_split(index, nq_5k, k):
    questions = [q.text for q in nq_5k.split("test")]
    for start in range(0, len(questions), 32):
        batch = questions[start : start + 32]
        (pos, val), (ref_pos, ref_val) = index.rank(batch, k), index.retrieve_rank(batch, k)
        assert pos.dtype == ref_pos.dtype and val.dtype == ref_val.dtype
        assert np.array_equal(pos, ref_pos) and np.array_equal(val, ref_val)


def test_a_query_without_a_known_token_ranks_as_bm25s_does(index):
    batch = ["zzzqqqxxy", "who wrote the declaration of independence", ""]
    (pos, val), (ref_pos, ref_val) = index.rank(batch, 5), index.retrieve_rank(batch, 5)
    assert np.array_equal(pos, ref_pos) and np.array_equal(val, ref_val)

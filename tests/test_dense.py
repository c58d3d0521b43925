"""The dense provider: presets, load errors, retrieval quality on nq_5k test questions, caching."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from rag_bench.errors import RagBenchError
from rag_bench.runner import build_provider, prepare_provider
from rag_bench.scoring.retrieval import recall_at
from rag_bench_plugins.dense import DenseParams
from rag_bench_plugins.dense import encoder as dense_encoder
from rag_bench_plugins.dense.presets import resolve

#: Distractors added to the gold passages of the 532 nq_5k test questions. Encoding all
#: 5,000 passages with MiniLM takes 4-10 minutes on the 2 shared CI cores (measured), so the
#: retrieval tests rank among ~1,000 passages: every test question's gold passage plus these.
DISTRACTORS = 500
K = 20


def nq_test_slice(task):
    """nq_5k's test questions over a smaller corpus: their gold passages plus DISTRACTORS others.

    Distractors are the first passages by sha256 of their id (deterministic); the corpus keeps
    nq_5k's order. The corpus hash is recomputed so provider caches are keyed to this slice.
    """
    questions = task.split("test")
    gold = {d for q in questions for d in q.gold_doc_ids}
    others = sorted((p.doc_id for p in task.corpus if p.doc_id not in gold), key=lambda d: hashlib.sha256(d.encode()).hexdigest())
    keep = gold | set(others[:DISTRACTORS])
    corpus = [p for p in task.corpus if p.doc_id in keep]
    digest = hashlib.sha256("\n".join(p.doc_id for p in corpus).encode()).hexdigest()
    return dataclasses.replace(task, corpus=corpus, questions=questions, files_sha256={**task.files_sha256, "corpus.jsonl": digest})


@pytest.fixture(scope="module")
def nq_slice(nq_5k):
    return nq_test_slice(nq_5k)


def prepared(name: str, task, **settings):
    provider = build_provider(name, {k: str(v) for k, v in settings.items()})
    info = prepare_provider(name, provider, task)
    return provider, info


def mean_recall(provider, task, k: int = K) -> float:
    results = provider.provide(task.questions, k)
    return float(np.mean([recall_at([h.doc_id for h in ev.hits], set(q.gold_doc_ids), k) for q, ev in zip(task.questions, results)]))


def test_default_preset_is_e5_base_with_its_prefixes():
    model = resolve(DenseParams().model, None, None, None)
    assert model.model_id == "intfloat/e5-base-v2"
    assert (model.query_prefix, model.passage_prefix, model.pooling) == ("query: ", "passage: ", "mean")


def test_explicit_settings_override_the_preset_and_other_ids_pass_through():
    model = resolve("e5-base-v2", "q> ", None, "cls")
    assert (model.query_prefix, model.passage_prefix, model.pooling) == ("q> ", "passage: ", "cls")
    other = resolve("org/some-model", None, None, None)
    assert (other.model_id, other.query_prefix, other.pooling) == ("org/some-model", "", None)
    with pytest.raises(RagBenchError, match="pooling"):
        resolve("minilm", None, None, "sum")


def test_minilm_preset_embeds_exactly_like_its_own_sentence_transformers_config(nq_5k):
    from sentence_transformers import SentenceTransformer

    model = resolve("minilm", None, None, None)
    texts = [p.text for p in nq_5k.corpus[:6]] + ["word " * 400]  # one text past the 256-token limit
    ours = dense_encoder.encode(dense_encoder.load_encoder(model, "cpu"), texts, "", 8)
    theirs = SentenceTransformer(model.load_from(), device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(ours, theirs, atol=1e-5)


def test_bad_index_kind_is_a_user_error():
    with pytest.raises(RagBenchError, match="index must be one of"):
        build_provider("dense", {"index": "lsh"})


def test_a_model_that_cannot_load_names_it_and_the_offline_way(nq_slice, tmp_path):
    missing = tmp_path / "no-such-model"
    provider = build_provider("dense", {"model": str(missing)})
    with pytest.raises(RagBenchError) as info:
        prepare_provider("dense", provider, nq_slice)
    message = str(info.value)
    assert str(missing) in message and "HF_HUB_OFFLINE=1" in message and "-P model=" in message


@pytest.mark.slow
def test_dense_minilm_beats_no_retrieval_on_nq_test_questions(nq_slice):
    dense, _ = prepared("dense", nq_slice, model="minilm")
    closed, _ = prepared("no_retrieval", nq_slice)
    dense_recall = mean_recall(dense, nq_slice)
    assert mean_recall(closed, nq_slice) == 0.0
    # MiniLM finds most NQ gold passages among ~1,000 (a broken encoder or index would not).
    assert dense_recall > 0.6, dense_recall
    footprint = dense.footprint()
    assert set(footprint) == {"index", "text_store"}
    # A flat index stores one float32 vector (384-d for MiniLM) per passage.
    assert footprint["index"] >= len(nq_slice.corpus) * 384 * 4


@pytest.mark.slow
def test_second_prepare_reuses_cached_embeddings_and_index(nq_slice, monkeypatch):
    first, _ = prepared("dense", nq_slice, model="minilm")
    expected = first.search([q.text for q in nq_slice.questions[:20]], 5)

    def no_encoding(*args, **kwargs):
        raise AssertionError("passages were encoded again")

    monkeypatch.setattr(dense_encoder, "encode_to_file", no_encoding)
    again, info = prepared("dense", nq_slice, model="minilm")
    assert info["reused_cache"]
    assert again.search([q.text for q in nq_slice.questions[:20]], 5) == expected
    # Another index kind builds a new index from the cached embeddings, still without encoding.
    for kind in ("hnsw", "ivf"):
        approximate, info = prepared("dense", nq_slice, model="minilm", index=kind)
        assert not info["reused_cache"]
        results = approximate.search([q.text for q in nq_slice.questions[:20]], 5)
        same_top1 = sum(a[0][0] == b[0][0] for a, b in zip(results, expected))
        assert same_top1 >= 18, (kind, same_top1)


@pytest.mark.slow
def test_provide_returns_ranked_passages_as_evidence(nq_slice):
    dense, _ = prepared("dense", nq_slice, model="minilm")
    by_id = nq_slice.passages_by_id
    for evidence in dense.provide(nq_slice.questions[:8], 5):
        scores = [h.score for h in evidence.hits]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True) and scores[0] <= 1.0 + 1e-5
        for hit, text in zip(evidence.hits, evidence.evidence):
            assert by_id[hit.doc_id].text in text
        assert set(evidence.timings_ms) == {"encode", "search"}

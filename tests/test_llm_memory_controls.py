"""The controls that show whether generated evidence comes from z: on a slice trained to memorise, evidence generated
from the routed z_i must beat the same model reading another passage's z (shuffled) or none (zeroed), significantly by
a paired bootstrap. This test fails if generation ignores z."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rag_bench.scoring.evidence import rouge_l

from rag_bench_plugins.llm_memory.config import LLMMemoryParams
from rag_bench_plugins.llm_memory.evaluation import gold_slice
from rag_bench_plugins.llm_memory.generation import generate
from rag_bench_plugins.llm_memory.provider import controlled, derangement
from rag_bench_plugins.llm_memory.quantized import int8_inference_copy
from rag_bench_plugins.llm_memory.system import MemorySystem

#: The minilm profile at a size that trains in well under a minute: 8 token slots, 8-token openings.
MEMORISE = dict(m_tokens=9, max_evidence_tokens=9, max_new_tokens=8, batch_size=8, max_train_steps=160, warmup_steps=10,
                pseudo_queries=3, max_query_tokens=20, checkpoint_every=1000, question_repeat=0, hard_negatives=2)
PASSAGES = 24


def paired_bootstrap_low(diffs: np.ndarray, resamples: int = 2000, seed: int = 0) -> float:
    """The 2.5th percentile of the mean paired difference over resampled items."""
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(1)
    return float(np.percentile(means, 2.5))


@pytest.fixture(scope="module")
def memorised(nq_5k, tmp_path_factory):
    passages, _ = gold_slice(nq_5k.corpus, nq_5k.split("train"), PASSAGES)
    folder = tmp_path_factory.mktemp("memorised") / "memory"
    system, report = MemorySystem.fit(LLMMemoryParams(**MEMORISE), passages, [], folder, progress=False)
    return system, report


def test_evidence_from_the_routed_z_beats_shuffled_and_zeroed_z(memorised):
    system, report = memorised
    assert report.history[-1]["gen_loss"] < report.history[0]["gen_loss"] / 2
    model, tok, params = system.model, system.tokenizer, system.params
    queries = [p.title for p in system.passages]  # a title maps to its passage's opening, which it does not contain
    openings = [" ".join(p.text.split()[:6]) for p in system.passages]
    own = torch.arange(len(queries))[:, None]  # read each passage's own z_i: the test is about generation, not routing
    perm = derangement(len(queries), 0)
    texts = {
        "true": generate(model, tok, queries, own, params),
        "shuffled": generate(model, tok, queries, own, params, z=model.z[perm]),
        "zeroed": generate(model, tok, queries, own, params, z=torch.zeros_like(model.z)),
    }
    scores = {name: np.array([rouge_l(t[0], o) for t, o in zip(rows, openings)]) for name, rows in texts.items()}
    assert scores["true"].mean() > 0.5, texts["true"][:3]
    for control in ("shuffled", "zeroed"):
        low = paired_bootstrap_low(scores["true"] - scores[control])
        assert low > 0.2, (control, scores["true"].mean(), scores[control].mean())


def test_the_int8_inference_copy_still_generates_from_z_and_leaves_the_trained_model_alone(memorised):
    system, _ = memorised
    trained = {name: value.clone() for name, value in system.model.state_dict().items()}
    model, tok, params = int8_inference_copy(system.model), system.tokenizer, system.params
    assert not any(type(m) is torch.nn.Linear for m in model.lm.modules()) and model.z is system.model.z
    queries = [p.title for p in system.passages]
    openings = [" ".join(p.text.split()[:6]) for p in system.passages]
    own = torch.arange(len(queries))[:, None]
    true = np.array([rouge_l(t[0], o) for t, o in zip(generate(model, tok, queries, own, params), openings)])
    shuffled = generate(model, tok, queries, own, params, z=model.z[derangement(len(queries), 0)])
    assert true.mean() > 0.5
    assert paired_bootstrap_low(true - np.array([rouge_l(t[0], o) for t, o in zip(shuffled, openings)])) > 0.2
    assert all(torch.equal(value, trained[name]) for name, value in system.model.state_dict().items())


def test_derangement_moves_every_memory_and_is_seeded():
    perm = derangement(50, 3)
    assert sorted(perm.tolist()) == list(range(50)) and all(perm[i] != i for i in range(50))
    assert torch.equal(perm, derangement(50, 3)) and not torch.equal(perm, derangement(50, 4))


def test_control_sample_is_stable_and_near_its_rate():
    qids = [f"q{i}" for i in range(2000)]
    chosen = [q for q in qids if controlled(q, 4)]
    assert chosen == [q for q in qids if controlled(q, 4)]
    assert 400 < len(chosen) < 600
    assert all(controlled(q, 1) for q in qids) and not any(controlled(q, 0) for q in qids)

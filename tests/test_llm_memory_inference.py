"""The fast inference path decodes exactly what the reference path decodes: the query prefilled once, by the
routing, for its k memories, and the repetition penalty over generated ids only, in place."""

from __future__ import annotations

import pytest
import torch

from rag_bench_plugins.llm_memory.config import LLMMemoryParams
from rag_bench_plugins.llm_memory.evaluation import gold_slice
from rag_bench_plugins.llm_memory.generation import (InPlaceLayer, cache_layers, encode, generate, generate_ids,
                                                     generate_shared, grow_in_place, key_index, penalise_repeats,
                                                     penalise_repeats_dense, prefill_queries, route,
                                                     route_and_generate)
from rag_bench_plugins.llm_memory.system import MemorySystem

QUERIES = ["who wrote the novel war and peace", "when did the first world war end", "what is the tallest mountain"]
SMALL = dict(m_tokens=5, z_dim=32, route_dim=32, max_query_tokens=20, max_new_tokens=6, threads=1)
BASES = {
    "tiny": dict(base="tiny", tokenizer="minilm", tiny_hidden=64, tiny_layers=2, tiny_heads=2, tiny_kv_heads=1,
                 tiny_intermediate=128),
    "minilm": dict(base="minilm"),
}


@pytest.fixture(scope="module", params=sorted(BASES))
def system(request, nq_5k):
    passages, _ = gold_slice(nq_5k.corpus, nq_5k.split("train"), 12)
    return MemorySystem.build(LLMMemoryParams(**BASES[request.param], **SMALL), passages)


@pytest.mark.parametrize("k", [1, 3])
def test_shared_prefill_decodes_the_reference_token_ids(system, k):
    model, tok, params = system.model, system.tokenizer, system.params
    positions = torch.stack([torch.randperm(len(system.passages), generator=torch.Generator().manual_seed(i))[:k]
                             for i in range(len(QUERIES))])
    z = model.z[positions.reshape(-1)]
    reference = generate_ids(model, *encode(model, tok, QUERIES, params, repeat=k), z, 6, None, 1.3)
    fast = generate_shared(model, *encode(model, tok, QUERIES, params), z, 6, None, 1.3)
    assert fast == reference
    assert generate(model, tok, QUERIES, positions, params) == generate(model, tok, QUERIES, positions, params,
                                                                        shared_prefill=False)


@pytest.mark.parametrize("depth", [1, 3])
def test_the_providers_path_routes_and_decodes_as_the_reference(system, depth):
    model, tok, params = system.model, system.tokenizer, system.params
    routed, texts, seconds = route_and_generate(model, tok, QUERIES, 4, depth, params)
    reference = route(model, tok, QUERIES, 4, params)
    assert torch.equal(routed.positions, reference.positions)
    assert torch.allclose(routed.scores, reference.scores)
    assert texts == generate(model, tok, QUERIES, reference.positions[:, :depth], params, shared_prefill=False)
    assert [len(row) for row in texts] == [depth] * len(QUERIES) and seconds > 0


def test_routing_through_the_key_index_exact_and_approximate(system):
    model, tok, params = system.model, system.tokenizer, system.params
    reference = route(model, tok, QUERIES, 4, params)
    exact, graph = key_index(model), key_index(model, exact_max=0)
    assert (exact.method, graph.method) == ("exact", "hnsw")
    for index in (exact, graph):  # a graph over 12 keys reaches every one of them
        routed, texts, _ = route_and_generate(model, tok, QUERIES, 4, 2, params, index)
        assert torch.equal(routed.positions, reference.positions)
        assert torch.allclose(routed.scores, reference.scores, atol=1e-4)
        assert texts == generate(model, tok, QUERIES, reference.positions[:, :2], params)


def test_the_kv_cache_grows_in_place_with_the_values_concatenation_gives(system):
    model, tok, params = system.model, system.tokenizer, system.params
    q_ids, q_mask = encode(model, tok, QUERIES, params)
    with torch.no_grad():
        grown, concatenated = (model.kv_cache(prefill_queries(model, q_ids, q_mask)) for _ in range(2))
        grow_in_place(grown, 2)
        layers = cache_layers(grown)
        assert layers and all(isinstance(layer.update.__self__, InPlaceLayer) for layer in layers)
        buffers = [layer.keys.data_ptr() for layer in layers]
        positions = q_mask.long().sum(-1, keepdim=True)
        mask = torch.cat([q_mask, torch.ones_like(q_mask[:, :1])], 1)
        token = torch.full((len(QUERIES), 1), 7)
        steps = [model.run(model.embed(token), mask, cache=cache, positions=positions, use_cache=True)
                 for cache in (grown, concatenated)]
        assert torch.equal(steps[0].last_hidden_state, steps[1].last_hidden_state)
        for layer, reference, pointer in zip(layers, cache_layers(concatenated), buffers, strict=True):
            assert layer.keys.data_ptr() == pointer  # written into the same buffer, not reallocated
            assert torch.equal(layer.keys, reference.keys) and torch.equal(layer.values, reference.values)
        with pytest.raises(RuntimeError, match="room for"):
            layers[0].update(torch.zeros_like(layers[0].keys[:, :, :2]), torch.zeros_like(layers[0].values[:, :, :2]))


@pytest.mark.parametrize("rows", [1, 7, 160])
def test_the_blocked_decoding_head_gives_the_heads_own_logits(system, rows):
    model = system.model
    hidden = torch.randn(rows, model.lm.get_input_embeddings().weight.shape[1], generator=torch.Generator().manual_seed(rows))
    with torch.no_grad():
        assert torch.equal(model.decode_logits(hidden), model.logits(hidden))


def test_penalty_over_generated_ids_equals_the_dense_penalty():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    generated = torch.tensor([[3, 7, 3], [0, 1, 2], [49, 49, 49], [10, 20, 30]])
    dense = logits.clone()
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter(1, generated, True)
    dense = torch.where(seen, torch.where(dense > 0, dense / 1.3, dense * 1.3), dense)
    assert torch.equal(penalise_repeats_dense(logits, generated, 1.3), dense)
    assert torch.equal(penalise_repeats(logits, generated, 1.3), dense)


def test_inference_benchmark_compares_both_paths_on_one_memory(nq_5k, tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "llm_memory_inference.py"
    spec = importlib.util.spec_from_file_location("llm_memory_inference", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    passages, questions = gold_slice(nq_5k.corpus, nq_5k.split("train"), 12)
    params = LLMMemoryParams(**BASES["tiny"], **SMALL, max_train_steps=2, batch_size=4, warmup_steps=1)
    MemorySystem.fit(params, passages, questions, tmp_path / "memory", progress=False)
    out = tmp_path / "bench.json"
    assert bench.main(["--checkpoint", str(tmp_path / "memory"), "--task", "nq_5k", "--limit", "5", "--depth", "3",
                       "--batch-size", "2", "--threads", "1", "--rounds", "1", "--paths", "reference,fast,blocked,int8",
                       "--out", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["identical_tokens"] and row["threads"] == 1 and len(row["rounds"]["fast"]) == 1
    assert row["agreement_with_reference"]["fast"] == {"positions": 1.0, "tokens": 1.0, "rows": 1.0}
    assert row["agreement_with_reference"]["blocked"] == {"positions": 1.0, "tokens": 1.0, "rows": 1.0}
    assert row["screen"]["rows"] > 0 and row["screen"]["decided"] + row["screen"]["rescored"] == pytest.approx(1.0)
    assert row["agreement_with_reference"]["int8"]["positions"] == 1.0  # int8 generates; routing stays fp32

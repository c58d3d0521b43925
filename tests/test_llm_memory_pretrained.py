"""The research configuration's code path at tiny size: a base saved to disk and loaded through `from_pretrained`,
LoRA, routing at a deep layer and generation, for a Qwen3-style decoder and a BERT checkpoint loaded as a decoder;
plus the routing read under `last` pooling and the storage parts behind the headline."""

from __future__ import annotations

import json

import pytest
import torch

from rag_bench.errors import RagBenchError
from rag_bench.runner import build_provider

from rag_bench_plugins.core_metrics import EfficiencyMetric
from rag_bench_plugins.llm_memory.config import Z_BYTES, LLMMemoryParams
from rag_bench_plugins.llm_memory.evaluation import gold_slice
from rag_bench_plugins.llm_memory.generation import encode, generate, route
from rag_bench_plugins.llm_memory.provider import GENERATED_CONTROLS
from rag_bench_plugins.llm_memory.system import MemorySystem
from rag_bench_plugins.llm_memory.tokenizer import minilm_path

from tests.test_llm_memory import slice_task

SIZE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
TRAIN = dict(m_tokens=5, z_dim=32, route_dim=32, batch_size=8, max_train_steps=6, warmup_steps=2, pseudo_queries=2,
             max_query_tokens=20, max_evidence_tokens=8, max_new_tokens=4, threads=1, checkpoint_every=1000,
             route_layer=1, lr_llm=1e-3)


def save_base(folder, kind: str):
    """A randomly initialised base saved with the MiniLM tokenizer: a Qwen3 causal LM, or a bare BERT encoder
    (like a sentence-embedding checkpoint: no prediction head, which then trains as memory)."""
    from transformers import AutoTokenizer, BertConfig, BertModel, Qwen3Config, Qwen3ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    if kind == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(tokenizer), num_key_value_heads=1, head_dim=32,
                                             max_position_embeddings=256, **SIZE))
    else:
        model = BertModel(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=256, **SIZE))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def slice_40(nq_5k):
    return gold_slice(nq_5k.corpus, nq_5k.split("train"), 40)


@pytest.fixture(scope="module", params=["qwen3", "bert"])
def pretrained(request, slice_40, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"base-{request.param}")
    base = save_base(root / "base", request.param)
    params = LLMMemoryParams(base=str(base), **TRAIN)
    passages, questions = slice_40
    system, report = MemorySystem.fit(params, passages, questions, root / "memory", progress=False)
    return request.param, base, system, report, root / "memory"


def test_lora_trains_adapters_and_leaves_the_saved_base_weights_alone(pretrained):
    from safetensors.torch import load_file

    kind, base, system, report, _ = pretrained
    assert report.steps == 6 and system.params.use_lora
    saved = load_file(str(base / "model.safetensors"))
    lm = system.model.lm
    trained = {name for name, p in lm.named_parameters() if p.requires_grad}
    assert any("lora_" in name for name in trained)
    state = lm.state_dict()
    compared = 0
    for name, value in saved.items():
        key = next((k for k in state if k.replace(".base_layer", "").endswith(name.removeprefix("bert."))), None)
        if key is None or key in trained:
            continue
        assert torch.equal(state[key].cpu(), value), name
        compared += 1
    assert compared > 10
    if kind == "bert":  # the checkpoint has no prediction head: it starts untrained, so it trains and counts as memory
        assert any(name.startswith("cls.") for name in trained)


def test_provider_on_a_saved_base_routes_generates_and_reports_every_trained_byte(pretrained, slice_40, nq_5k, tmp_path):
    kind, base, system, _, folder = pretrained
    passages, questions = slice_40
    provider = build_provider("llm_memory", {"checkpoint": str(folder), "max_new_tokens": "4"})
    provider.prepare(slice_task(nq_5k, passages, questions), tmp_path)
    out = provider.provide(questions[:2], 3, evidence_k=2)
    assert [len(o.hits) for o in out] == [3, 3] and [len(o.evidence) for o in out] == [2, 2]
    assert set(out[0].info["controls"]) == set(GENERATED_CONTROLS) - ({"closed_book"} if provider.closed is None else set())
    parts = provider.footprint()
    assert set(parts) == {"memory_table", "projection_and_heads", "lora", "extra_base_model"}
    model = provider.system.model
    # Z counts as stored (fp16 by default), every other trained tensor as held
    stored_z = model.z.numel() * Z_BYTES[provider.system.params.z_storage]
    trained = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad and p is not model.z)
    assert sum(v for k, v in parts.items() if not k.startswith("extra_")) == trained + stored_z
    everything = sum(p.numel() * p.element_size() for p in model.parameters() if p is not model.z)
    assert sum(parts.values()) == everything + stored_z
    meta = provider.metadata()
    assert meta["trained_on_corpus"] and meta["finetune"] == "lora" and meta["base_model"] == str(base)
    assert meta["base_revision"] == provider.system.card["base"]["fingerprint"]


def test_storage_headline_is_the_sum_of_the_counted_parts():
    parts = {"memory_table": 4_000_000, "projection_and_heads": 500_000, "lora": 1_500_000, "extra_base_model": 90_000_000}

    class Ctx:
        efficiency = {"footprint_bytes": parts, "num_passages": 2000}

    out = EfficiencyMetric().run_level([], Ctx())
    assert out["footprint_mb_per_1k"].value == pytest.approx(3.0)  # 6 MB over 2K passages; the public base apart
    assert out["footprint_mb_per_1k.memory_table"].value == pytest.approx(2.0)
    assert out["footprint_mb_per_1k.extra_base_model"].value == pytest.approx(45.0)


def test_checkpoint_round_trip_on_a_saved_base_gives_identical_outputs(pretrained, nq_5k):
    _, _, system, _, folder = pretrained
    loaded = MemorySystem.load(folder, nq_5k.passages_by_id)
    queries = ["who wrote the declaration of independence", "how many moons does mars have"]
    a = route(system.model, system.tokenizer, queries, 2, system.params)
    b = route(loaded.model, loaded.tokenizer, queries, 2, loaded.params)
    assert torch.equal(a.positions, b.positions)
    assert generate(system.model, system.tokenizer, queries, a.positions, system.params) == \
        generate(loaded.model, loaded.tokenizer, queries, b.positions, loaded.params)


def test_a_memory_is_refused_on_a_base_whose_weights_changed(pretrained, nq_5k, tmp_path):
    import shutil

    _, base, _, _, folder = pretrained
    moved = tmp_path / "memory"
    shutil.copytree(folder, moved)
    other = save_base(tmp_path / "other-base", "qwen3")
    config = json.loads((other / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5 if config.get("rms_norm_eps") != 1e-5 else 1e-6
    (other / "config.json").write_text(json.dumps(config))
    card = json.loads((moved / "memory.json").read_text())
    card["settings"]["base"] = str(other)
    (moved / "memory.json").write_text(json.dumps(card))
    with pytest.raises(RagBenchError, match="belong to the other weights"):
        MemorySystem.load(moved, nq_5k.passages_by_id)


def test_last_pooling_reads_a_state_that_depends_on_the_query(slice_40):
    params = LLMMemoryParams(base="tiny", tokenizer="minilm", tiny_hidden=64, tiny_layers=2, tiny_heads=2, tiny_kv_heads=1,
                             tiny_intermediate=128, route_pool="last", route_layer=-1, **{k: v for k, v in TRAIN.items() if k != "route_layer"})
    system = MemorySystem.build(params, slice_40[0][:5])
    ids, mask = encode(system.model, system.tokenizer, ["who wrote hamlet", "what is the capital of peru"], params)
    with torch.no_grad():
        reads = system.model.query_hidden(ids, mask)
    assert not torch.allclose(reads[0], reads[1], atol=1e-4)

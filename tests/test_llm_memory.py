"""The llm_memory provider on a 200-passage slice of nq_5k with a tiny base: training, routing, write path, checkpoints, errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rag_bench.errors import RagBenchError
from rag_bench.runner import build_provider
from rag_bench.task import Task
from rag_bench.types import Passage

from rag_bench_plugins.llm_memory.checkpoint import corpus_fingerprint
from rag_bench_plugins.llm_memory.config import LLMMemoryParams
from rag_bench_plugins.llm_memory.evaluation import gold_slice, routing_recall
from rag_bench_plugins.llm_memory.generation import generate, route
from rag_bench_plugins.llm_memory.system import MemorySystem
from rag_bench_plugins.llm_memory.write import add_passages

SMALL = dict(base="tiny", tokenizer="minilm", m_tokens=9, tiny_hidden=64, tiny_layers=2, tiny_heads=2, tiny_kv_heads=1, tiny_intermediate=128, z_dim=32, route_dim=32,
             batch_size=16, max_train_steps=80, warmup_steps=10, tokenizer_vocab=2000, pseudo_queries=3,
             max_query_tokens=24, max_evidence_tokens=24, max_new_tokens=8, threads=1, checkpoint_every=1000)


def small_params(**changes) -> LLMMemoryParams:
    return LLMMemoryParams(**{**SMALL, **changes})


@pytest.fixture(scope="module")
def slice_200(nq_5k):
    """The gold passages of the first train questions (200 distinct) and those questions."""
    return gold_slice(nq_5k.corpus, nq_5k.split("train"), 200)


@pytest.fixture(scope="module")
def trained(slice_200, tmp_path_factory):
    passages, questions = slice_200
    folder = tmp_path_factory.mktemp("llm-memory") / "memory"
    system, report = MemorySystem.fit(small_params(), passages, questions, folder, progress=False)
    return system, report, folder


def slice_task(nq_5k, passages, questions) -> Task:
    return dataclasses.replace(nq_5k, corpus=list(passages), questions=list(questions))


def test_slice_has_200_passages(slice_200):
    passages, questions = slice_200
    assert len(passages) == 200 and len(questions) >= 200


def test_training_lowers_both_losses(trained):
    _, report, _ = trained
    first, last = report.history[0], report.history[-1]
    assert report.steps == 80
    assert last["gen_loss"] < first["gen_loss"] - 0.5
    assert last["route_loss"] < first["route_loss"]


def test_routing_recall_on_trained_questions_far_above_chance(trained, slice_200):
    system, _, _ = trained
    passages, questions = slice_200
    chance = 5 / len(passages)
    assert routing_recall(system, questions[:100], 5) > 8 * chance


def test_checkpoint_round_trip_gives_identical_outputs(trained, nq_5k):
    system, _, folder = trained
    loaded = MemorySystem.load(folder, nq_5k.passages_by_id)
    queries = ["who got the first nobel prize in physics", "when was the eiffel tower built"]
    a = route(system.model, system.tokenizer, queries, 3, system.params)
    b = route(loaded.model, loaded.tokenizer, queries, 3, loaded.params)
    assert torch.equal(a.positions, b.positions) and torch.equal(a.scores, b.scores)
    assert generate(system.model, system.tokenizer, queries, a.positions, system.params) == \
        generate(loaded.model, loaded.tokenizer, queries, b.positions, loaded.params)
    assert loaded.doc_ids == system.doc_ids


def test_memory_add_lowers_new_passage_loss_and_leaves_theta_bit_identical(trained, nq_5k):
    _, _, folder = trained
    system = MemorySystem.load(folder, nq_5k.passages_by_id)
    frozen = {n: p.detach().clone() for n, p in system.model.named_parameters() if n != "z"}
    old_z = system.model.z.detach().clone()
    held = set(system.doc_ids)
    new = [p for p in nq_5k.corpus if p.doc_id not in held][:3]
    report = add_passages(system, new, steps=50, lr=5e-3)
    assert all(after < before for before, after in zip(report.loss_before, report.loss_after)), (report.loss_before, report.loss_after, report.gen_loss_before, report.gen_loss_after)
    for name, p in system.model.named_parameters():
        if name != "z":
            assert torch.equal(p, frozen[name]), name
    assert torch.equal(system.model.z[: len(old_z)], old_z)
    assert system.model.z.shape[0] == len(old_z) + 3 and system.doc_ids[-3:] == [p.doc_id for p in new]
    with pytest.raises(RagBenchError, match="already in the memory"):
        add_passages(system, new[:1])


def test_provider_loads_checkpoint_routes_and_generates(trained, slice_200, nq_5k, tmp_path):
    _, _, folder = trained
    passages, questions = slice_200
    # the closed-book control's own training is tested in test_llm_memory_controls.py
    provider = build_provider("llm_memory", {"checkpoint": str(folder), "max_new_tokens": "6", "closed_book_control": "false"})
    provider.prepare(slice_task(nq_5k, passages, questions), tmp_path)
    out = provider.provide(questions[:3], 4)
    assert [len(o.hits) for o in out] == [4, 4, 4] and [len(o.evidence) for o in out] == [4, 4, 4]
    assert all(o.hits[0].score >= o.hits[-1].score for o in out)
    assert set(out[0].timings_ms) == {"routing", "generation", "total"}
    footprint = provider.footprint()
    assert footprint["memory_table"] == 200 * 9 * 32 * 2  # Z in fp16, the default z_storage
    assert set(footprint) == {"memory_table", "projection_and_heads", "finetuned_lm"}


def test_provider_generates_from_an_int8_copy_routes_as_before_and_counts_the_trained_weights(trained, slice_200, nq_5k, tmp_path):
    _, _, folder = trained
    passages, questions = slice_200
    settings = {"checkpoint": str(folder), "max_new_tokens": "6", "closed_book_control": "false"}
    exact = build_provider("llm_memory", settings)
    int8 = build_provider("llm_memory", {**settings, "inference_quantization": "int8"})
    for provider in (exact, int8):
        provider.prepare(slice_task(nq_5k, passages, questions), tmp_path)
    assert exact.generating is exact.system.model and int8.generating is not int8.system.model
    assert not any(type(m) is torch.nn.Linear for m in int8.generating.lm.modules())
    out, reference = int8.provide(questions[:3], 4), exact.provide(questions[:3], 4)
    assert [len(o.evidence) for o in out] == [4, 4, 4] and all("controls" in o.info for o in out)
    assert [o.hits for o in out] == [o.hits for o in reference]  # routing stays with the trained fp32 model
    assert int8.footprint() == exact.footprint()
    assert int8.settings()["inference_quantization"] == "int8" != exact.settings()["inference_quantization"]


def test_checkpoint_from_another_corpus_is_refused(trained, nq_5k, tmp_path):
    _, _, folder = trained
    provider = build_provider("llm_memory", {"checkpoint": str(folder)})
    with pytest.raises(RagBenchError, match="another corpus"):
        provider.prepare(nq_5k, tmp_path)


def test_training_resumes_after_interruption_to_the_same_weights(slice_200, tmp_path, monkeypatch):
    passages, questions = slice_200
    passages, questions = passages[:30], questions[:30]
    params = small_params(max_train_steps=6, checkpoint_every=2, batch_size=8, warmup_steps=2, tokenizer="corpus")
    straight, _ = MemorySystem.fit(params, passages, questions, tmp_path / "a", progress=False)
    _, cut = MemorySystem.fit(params, passages, questions, tmp_path / "b", progress=False, stop_after=3)
    assert cut.interrupted and not (tmp_path / "b" / "memory.json").exists()

    def initialise_again(*args):
        raise AssertionError("a resumed training recomputed the content initialisation its checkpoint holds")

    monkeypatch.setattr("rag_bench_plugins.llm_memory.system.init_memory", initialise_again)
    resumed, report = MemorySystem.fit(params, passages, questions, tmp_path / "b", progress=False)
    assert report.resumed_from == 2 and report.steps == 6
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


@pytest.mark.parametrize("setting, message", [
    ({"z_dim": "0"}, "z_dim must be a positive integer"),
    ({"m_tokens": "-1"}, "m_tokens must be a positive integer"),
    ({"tokenizer": "words"}, "tokenizer must be one of"),
    ({"quantization": "4bit", "base": "tiny"}, "needs a pretrained base"),
    ({"tiny_hidden": "64", "base": "tiny"}, "cannot act with tokenizer=minilm-warm"),
    ({"tiny_hidden": "64"}, "sizes only the tiny decoder"),
    ({"route_pool": "last", "route_layer": "0"}, "same for every query"),
    ({"inference_quantization": "int4"}, "inference_quantization must be one of none, int8"),
])
def test_bad_settings_give_clear_errors(setting, message):
    with pytest.raises(RagBenchError, match=message):
        build_provider("llm_memory", setting)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_4bit_without_cuda_is_refused():
    with pytest.raises(RagBenchError, match="needs CUDA"):
        build_provider("llm_memory", {"base": "Qwen/Qwen3-8B", "quantization": "4bit"})


def test_unknown_base_is_refused(slice_200, tmp_path):
    params = LLMMemoryParams(base=str(tmp_path / "no-such-model"), m_tokens=9, z_dim=32, route_dim=32)
    with pytest.raises(RagBenchError, match="cannot load base"):
        MemorySystem.build(params, slice_200[0][:5])


def test_corpus_fingerprint_ignores_order_but_not_text():
    a, b = Passage("1", "t", "x"), Passage("2", "u", "y")
    assert corpus_fingerprint([a, b]) == corpus_fingerprint([b, a])
    assert corpus_fingerprint([a, b]) != corpus_fingerprint([a, Passage("2", "u", "y!")])


def test_memory_add_command_extends_a_checkpoint(trained, nq_5k, tmp_path):
    import json

    from click.testing import CliRunner

    from rag_bench.cli import _load_plugin_commands, cli

    _, _, folder = trained
    _load_plugin_commands()
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"doc_id": "new-1", "title": "Zorblax", "text": "Zorblax is a moon of the planet Quux."}) + "\n")
    out = tmp_path / "extended"
    result = CliRunner().invoke(cli, ["memory", "add", "--checkpoint", str(folder), "--passages", str(new),
                                      "--task", "nq_5k", "--out", str(out), "--steps", "5"])
    assert result.exit_code == 0, result.output
    assert "memory now holds 201" in result.output
    extended = MemorySystem.load(out, nq_5k.passages_by_id)
    assert extended.doc_ids[-1] == "new-1" and extended.model.z.shape[0] == 201
    bad = CliRunner().invoke(cli, ["memory", "add", "--checkpoint", str(tmp_path), "--passages", str(new), "--task", "nq_5k"])
    assert bad.exit_code == 1 and "no checkpoint" in bad.output


def test_inference_settings_reuse_the_trained_memory_and_model_settings_do_not(nq_5k):
    from rag_bench.preparation import provider_workdir

    def workdir(settings):
        return provider_workdir("llm_memory", build_provider("llm_memory", settings), nq_5k)

    default = workdir({})
    for runtime in ({"threads": "1"}, {"max_new_tokens": "8"}, {"control_every": "4"}, {"exact_routing_max": "0"},
                    {"inference_quantization": "int8"}):
        assert workdir(runtime) == default, runtime
    assert workdir({"m_tokens": "9"}) != default and workdir({"max_train_steps": "10"}) != default

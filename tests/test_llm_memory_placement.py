"""llm_memory for the research setting, at tiny size on CPU: which device and dtype a memory runs in, gradient
checkpointing, the dtypes under 4-bit, and the base-model provenance a memory carries.

The CUDA cases are tested through the function that decides them (`base.compute_device`, the 4-bit `device_map`) with
CUDA faked; the placement of a loaded memory through a faked device (``meta``) and dtype (bf16).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from rag_bench.errors import RagBenchError
from rag_bench.types import Passage

from rag_bench_plugins.llm_memory import base
from rag_bench_plugins.llm_memory.config import LLMMemoryParams
from rag_bench_plugins.llm_memory.data import Collator, build_examples, encode_examples
from rag_bench_plugins.llm_memory.generation import generate, route
from rag_bench_plugins.llm_memory.model import MemoryModel
from rag_bench_plugins.llm_memory.system import MemorySystem

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon "
         "phi chi psi omega river mountain city harbour castle").split()
TINY = dict(tiny_hidden=32, tiny_layers=2, tiny_heads=2, tiny_kv_heads=1, tiny_intermediate=64, z_dim=16, route_dim=16,
            m_tokens=4, batch_size=8, max_train_steps=2, warmup_steps=1, tokenizer="corpus", tokenizer_vocab=400,
            pseudo_queries=2, max_query_tokens=16, max_evidence_tokens=12, max_new_tokens=4, threads=1,
            checkpoint_every=1000)


def passages(count: int = 12, seed: int = 0) -> list[Passage]:
    rng = random.Random(seed)
    return [Passage(f"d{i}", f"{rng.choice(WORDS)} {i}", " ".join(rng.choice(WORDS) for _ in range(30)) + ".")
            for i in range(count)]


def tiny(**changes) -> LLMMemoryParams:
    return LLMMemoryParams(**{"base": "tiny", **TINY, **changes})


def save_decoder(folder: Path, seed: int = 0, tie: bool = True) -> Path:
    """A small Qwen3-style decoder saved like a hub checkpoint (config, weights, the MiniLM tokenizer): a 'pretrained' base."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    from rag_bench_plugins.llm_memory.tokenizer import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
                         tie_word_embeddings=tie, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def decoder_folder(tmp_path_factory) -> Path:
    return save_decoder(tmp_path_factory.mktemp("base") / "tiny-decoder")


def pretrained(folder: Path, **changes) -> LLMMemoryParams:
    settings = {k: v for k, v in TINY.items() if not k.startswith("tiny_") and k not in ("tokenizer", "tokenizer_vocab")}
    return LLMMemoryParams(**{"base": str(folder), **settings, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, **changes})


def one_batch(system: MemorySystem, size: int = 6) -> dict:
    examples = build_examples(system.passages, [], system.params, 0)[:size]
    encoded = encode_examples(system.tokenizer, examples, [[] for _ in examples], system.params)
    return Collator(system.tokenizer.pad_token_id, 0)(encoded)


# -- device --------------------------------------------------------------------------------------------------------

def fake_cuda(monkeypatch, count: int, current: int = 0) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)


def test_compute_device_is_the_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert base.compute_device() == torch.device("cpu")
    assert base.compute_dtype() == torch.float32


def test_compute_device_is_this_ranks_gpu_under_a_multi_process_launch(monkeypatch):
    fake_cuda(monkeypatch, count=4, current=0)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert base.compute_device() == torch.device("cuda", 2)
    assert base.compute_dtype() == torch.bfloat16
    monkeypatch.delenv("LOCAL_RANK")
    fake_cuda(monkeypatch, count=4, current=3)
    assert base.compute_device() == torch.device("cuda", 3)  # one process: the current device


def test_a_rank_without_a_gpu_of_its_own_is_refused(monkeypatch):
    fake_cuda(monkeypatch, count=2)
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(RagBenchError, match="LOCAL_RANK=2 but sees 2 CUDA device"):
        base.compute_device()


def test_a_4bit_base_loads_onto_this_ranks_gpu(monkeypatch, decoder_folder):
    import transformers

    fake_cuda(monkeypatch, count=2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    seen = {}

    class Stop(Exception):
        pass

    def from_pretrained(path, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(transformers, "BitsAndBytesConfig", lambda **kwargs: kwargs)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    with pytest.raises(Stop):
        base.load_pretrained(pretrained(decoder_folder, quantization="4bit"))
    assert seen["device_map"] == {"": 1}
    assert seen["dtype"] == torch.bfloat16 and seen["quantization_config"]["load_in_4bit"]


def test_4bit_without_bitsandbytes_says_what_to_install(monkeypatch, decoder_folder):
    import importlib.util

    fake_cuda(monkeypatch, count=1)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(RagBenchError, match=r"rag-bench\[gpu\]"):
        base.check_environment(pretrained(decoder_folder, quantization="4bit"))


@pytest.fixture(scope="module")
def tiny_memory(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-memory") / "memory"
    corpus = passages()
    system, _ = MemorySystem.fit(tiny(), corpus, [], folder, progress=False)
    return system, folder, {p.doc_id: p for p in corpus}


def test_a_loaded_memory_is_moved_to_the_compute_device(monkeypatch, tiny_memory):
    """`MemorySystem.load` (scoring, `memory add`, evaluation) puts the LM on `compute_device()`, e.g. cuda:LOCAL_RANK;
    the GPU is faked here by a spy on `Module.to` that records the move and stays on the CPU."""
    _, folder, by_id = tiny_memory
    gpu = torch.device("cuda", 1)
    monkeypatch.setattr(base, "compute_device", lambda: gpu)
    moves = []
    real_to = torch.nn.Module.to

    def spy(module, *args, **kwargs):
        if args and args[0] == gpu:
            moves.append(type(module).__name__)
            args = (torch.device("cpu"), *args[1:])
        return real_to(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    loaded = MemorySystem.load(folder, by_id)
    assert moves == ["Qwen3ForCausalLM"]
    assert loaded.model.z.device == loaded.model.lm.get_input_embeddings().weight.device  # Z follows the LM


def test_a_loaded_memory_runs_in_the_compute_dtype_with_fp32_memory(monkeypatch, tiny_memory):
    system, folder, by_id = tiny_memory
    assert system.card["train"]["dtype"] == "float32" and system.card["train"]["device"] == "cpu"
    monkeypatch.setattr(base, "compute_dtype", lambda: torch.bfloat16)  # what a GPU trains and loads in
    loaded = MemorySystem.load(folder, by_id)
    assert loaded.model.lm_dtype == torch.bfloat16
    assert {p.dtype for p in loaded.model.lm.parameters()} == {torch.bfloat16}
    for part in (loaded.model.z, *loaded.model.proj.parameters(), *loaded.model.route_query.parameters(),
                 *loaded.model.route_key.parameters()):
        assert part.dtype == torch.float32
    routed = route(loaded.model, loaded.tokenizer, ["alpha beta river"], 2, loaded.params)
    assert len(generate(loaded.model, loaded.tokenizer, ["alpha beta river"], routed.positions, loaded.params)[0]) == 2


# -- memory-lean training ------------------------------------------------------------------------------------------

def test_gradient_checkpointing_is_on_by_default_for_pretrained_bases_but_the_cpu_profile(decoder_folder):
    assert not tiny().use_gradient_checkpointing
    assert tiny(gradient_checkpointing=True).use_gradient_checkpointing
    assert pretrained(decoder_folder).use_gradient_checkpointing
    assert not LLMMemoryParams().use_gradient_checkpointing  # the minilm CPU profile: memory is ample, time is not
    assert LLMMemoryParams(gradient_checkpointing=True).use_gradient_checkpointing
    assert not pretrained(decoder_folder, gradient_checkpointing=False).use_gradient_checkpointing


def saved_bytes(model, batch) -> tuple[dict, int]:
    """The training losses and the bytes autograd keeps for the backward pass."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = model(**batch)
    return out, total


@pytest.mark.parametrize("kind", ["tiny-full", "pretrained-lora"])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients_and_keeps_less(kind, decoder_folder):
    corpus = passages(8)
    results = {}
    for checkpointing in (False, True):
        params = (tiny(gradient_checkpointing=checkpointing) if kind == "tiny-full"
                  else pretrained(decoder_folder, gradient_checkpointing=checkpointing))
        system = MemorySystem.build(params, corpus)
        model = system.model
        assert base.checkpointing_enabled(model.lm) == checkpointing
        model.train()
        out, kept = saved_bytes(model, one_batch(system))
        out["loss"].backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
        results[checkpointing] = (out["loss"].detach(), grads, kept)
    (loss_a, grads_a, kept_a), (loss_b, grads_b, kept_b) = results[False], results[True]
    assert torch.equal(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7), name
    assert kept_b < kept_a, (kept_a, kept_b)  # (the vocabulary-wide logits at evidence positions are kept either way)


def test_dtypes_under_4bit_at_tiny_size(decoder_folder):
    """What `quantization=4bit` keeps in which dtype, on a bf16 tiny decoder standing in for the 4-bit base
    (bitsandbytes' 4-bit kernels need CUDA): the base frozen in bf16, head and embeddings included (no fp32 upcast),
    LoRA adapters, Z, projection and routing heads fp32, logits fp32."""
    from transformers import AutoModelForCausalLM

    params = pretrained(decoder_folder, quantization="4bit")
    untied = save_decoder(decoder_folder.parent / "untied", tie=False)
    lm = AutoModelForCausalLM.from_pretrained(str(untied), dtype=torch.bfloat16)
    model = MemoryModel(base.add_adapters(lm, params), 5, params)
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in name or name.startswith(("z", "proj.", "route_")) for name in trained)
    for name, p in model.named_parameters():
        expected = torch.float32 if name in trained else torch.bfloat16
        assert p.dtype == expected, (name, p.dtype)
    assert model.head.weight.dtype == torch.bfloat16 and model.lm.get_input_embeddings().weight.dtype == torch.bfloat16
    q_ids = torch.randint(5, 100, (2, 6))
    e_ids = torch.randint(5, 100, (2, 5))
    ones = torch.ones_like
    with torch.autocast("cpu", dtype=torch.bfloat16):  # accelerate's bf16 mixed precision
        out = model(q_ids, ones(q_ids), e_ids, ones(e_ids), torch.tensor([0, 3]), torch.full((2, 1), -1))
    out["loss"].backward()
    assert out["gen_loss"].dtype == torch.float32
    assert model.logits(torch.zeros(1, 32, dtype=torch.bfloat16)).dtype == torch.float32
    assert model.z.grad is not None and all(p.grad is None for n, p in model.named_parameters() if n not in trained)


# -- provenance ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lora_memory(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora-memory")
    folder = save_decoder(root / "base")
    corpus = passages()
    system, _ = MemorySystem.fit(pretrained(folder), corpus, [], root / "memory", progress=False)
    return root, folder, {p.doc_id: p for p in corpus}, system


def test_memory_json_records_the_base_id_and_a_hash_of_its_files(lora_memory):
    root, folder, _, _ = lora_memory
    card = json.loads((root / "memory" / "memory.json").read_text())
    assert card["base"]["id"] == str(folder)
    assert card["base"]["fingerprint"] == base.base_fingerprint(pretrained(folder))
    assert len(card["base"]["fingerprint"]) == 64 and card["base"]["revision"] is None
    assert tiny().is_tiny and base.base_provenance(tiny())["fingerprint"] is None


def test_the_fingerprint_follows_the_weight_and_config_files(tmp_path):
    folder = save_decoder(tmp_path / "m")
    params = pretrained(folder)
    first = base.base_fingerprint(params)
    assert base.base_fingerprint(params) == first  # remembered by size and modification time
    save_decoder(folder, seed=1)
    assert base.base_fingerprint(params) != first
    config = json.loads((folder / "config.json").read_text())
    before = base.base_fingerprint(params)
    (folder / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    assert base.base_fingerprint(params) != before


def test_loading_a_memory_onto_another_base_is_refused(lora_memory, tmp_path):
    import shutil

    root, folder, by_id, system = lora_memory
    loaded = MemorySystem.load(root / "memory", by_id)  # the same base: loads, with the same weights
    for (name, a), (_, b) in zip(system.model.named_parameters(), loaded.model.named_parameters()):
        assert torch.equal(a.detach().cpu(), b.detach()), name
    moved = tmp_path / "memory"
    shutil.copytree(root / "memory", moved)
    save_decoder(folder, seed=7)  # the base path now holds other weights
    try:
        with pytest.raises(RagBenchError, match=r"was trained on base .* with config and weight files of sha256 "
                                                r"[0-9a-f]{12}, but .* here has [0-9a-f]{12}"):
            MemorySystem.load(moved, by_id)
    finally:
        save_decoder(folder, seed=0)


def test_a_hub_base_records_its_revision_from_the_hugging_face_cache(tmp_path, monkeypatch):
    """A hub id resolves to its snapshot in the HF cache (models--ORG--NAME/snapshots/COMMIT): the commit is the
    revision, the snapshot's files are fingerprinted, and a memory whose recorded revision differs is refused."""
    from huggingface_hub import constants

    from rag_bench_plugins.llm_memory.system import check_base

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--example--tiny-decoder"
    save_decoder(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    params = pretrained(Path("example/tiny-decoder"))
    assert params.base == "example/tiny-decoder"
    provenance = base.base_provenance(params)
    assert provenance["id"] == "example/tiny-decoder" and provenance["revision"] == commit
    assert provenance["fingerprint"] == base.base_fingerprint(pretrained(repo / "snapshots" / commit))
    check_base({"base": provenance}, params, tmp_path)  # the same base: accepted
    with pytest.raises(RagBenchError, match=r"hub revision fedcba987654, but 'example/tiny-decoder' here has 0123456789ab"):
        check_base({"base": {**provenance, "fingerprint": None, "revision": "fedcba98765432100123456789abcdef01234567"}},
                   params, tmp_path)
    assert base.base_provenance(pretrained(Path("example/not-cached")))["fingerprint"] is None

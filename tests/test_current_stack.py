"""The stack the tests run on, and llm_memory against what the installed transformers deprecates.

.ci/run has two lanes: the locked set (constraints-lock.txt: transformers 4.57, RAGChecker beside rag-bench) and the
current stack (constraints-current.txt: transformers 5.x, current peft and accelerate, sentence-transformers 6.x,
RAGChecker in an environment of its own). With ``RAG_BENCH_LANE`` set, the first test checks that the environment is
the lane it claims to be. The others run the whole llm_memory path at tiny size (train with gradient checkpointing,
save, load, route, generate, write) and collect every deprecation transformers reports, as a warning or through its
logger: none may come from our calls.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import random
import subprocess
import warnings

import pytest
from packaging.version import Version

from rag_bench.types import Passage

#: Deprecations raised inside transformers on behalf of a library we call, not of our calls (message fragment: who).
FOREIGN = {"`is_gradient_checkpointing` is deprecated": "peft's PeftModel.__init__ reads it (peft 0.21.2)"}
#: Ours, in files owned elsewhere for now: the KV-cache keyword and output of the decoder (model.run, generation loop).
CACHE_KEYWORD = ("`past_key_values` is deprecated", "`past_key_values`/`cache_params` are deprecated")


def version(name: str) -> Version:
    from importlib.metadata import version as installed

    return Version(installed(name))


@pytest.mark.skipif(not os.environ.get("RAG_BENCH_LANE"), reason="RAG_BENCH_LANE is set by .ci/run")
def test_the_environment_is_the_lane_it_claims():
    lane = os.environ["RAG_BENCH_LANE"]
    if lane == "locked":
        assert version("transformers") < Version("5") and version("accelerate") < Version("0.32")
        assert importlib.util.find_spec("ragchecker") is not None  # beside rag-bench
        return
    assert lane == "current"
    assert version("transformers") >= Version("5") and version("sentence-transformers") >= Version("5")
    assert version("accelerate") >= Version("1") and version("peft") >= Version("0.17")
    assert importlib.util.find_spec("ragchecker") is None  # not holding the stack back
    python = os.environ["RAG_BENCH_RAGCHECKER_PYTHON"]  # its own environment, on its own transformers
    out = subprocess.run([python, "-c", "import ragchecker, transformers; print(transformers.__version__)"],
                         capture_output=True, text=True, check=True)
    assert Version(out.stdout.strip()) < Version("5")


@contextlib.contextmanager
def deprecations():
    """Every FutureWarning/DeprecationWarning raised from inside transformers, and every deprecation its logger
    reports (its `warning_once` cache cleared first), as messages."""
    import transformers  # noqa: F401

    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            if "deprecat" in record.getMessage().lower():
                found.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("transformers")
    logging.Logger.warning_once.cache_clear()
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield found
        found += [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))
                  and "/transformers/" in w.filename.replace("\\", "/")]
    finally:
        logger.removeHandler(handler)


def run_llm_memory(tmp_path) -> None:
    """Every transformers call llm_memory makes, at tiny size: a LoRA base from a saved config (gradient
    checkpointing on by default), training, checkpoint, load, routing, generation with the KV cache, the write path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    from rag_bench_plugins.llm_memory.config import LLMMemoryParams
    from rag_bench_plugins.llm_memory.generation import generate, route
    from rag_bench_plugins.llm_memory.system import MemorySystem
    from rag_bench_plugins.llm_memory.tokenizer import minilm_path
    from rag_bench_plugins.llm_memory.write import add_passages

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
                         pad_token_id=tokenizer.pad_token_id)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(tmp_path / "base"))
    tokenizer.save_pretrained(str(tmp_path / "base"))
    rng = random.Random(0)
    words = "river mountain city harbour castle forest island valley bridge tower".split()
    corpus = [Passage(f"d{i}", f"{words[i % 10]} {i}", " ".join(rng.choice(words) for _ in range(30)) + ".")
              for i in range(10)]
    params = LLMMemoryParams(base=str(tmp_path / "base"), z_dim=16, route_dim=16, m_tokens=4, batch_size=4,
                             max_train_steps=2, warmup_steps=1, pseudo_queries=2, max_query_tokens=16,
                             max_evidence_tokens=10, max_new_tokens=3, lora_r=4, lora_alpha=8, checkpoint_every=1000)
    MemorySystem.fit(params, corpus, [], tmp_path / "memory", progress=False)
    system = MemorySystem.load(tmp_path / "memory", {p.doc_id: p for p in corpus})
    routed = route(system.model, system.tokenizer, ["river city", "castle"], 2, system.params)
    generate(system.model, system.tokenizer, ["river city", "castle"], routed.positions, system.params)
    add_passages(system, [Passage("new", "tower", "tower bridge island valley forest river.")], steps=1)


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> list[str]:
    with deprecations() as found:
        run_llm_memory(tmp_path_factory.mktemp("stack"))
    return found


def test_llm_memory_calls_nothing_transformers_deprecates(reported):
    ours = [m for m in reported if not any(f in m for f in (*FOREIGN, *CACHE_KEYWORD))]
    assert ours == []


def test_the_kv_cache_uses_the_current_keyword(reported):
    assert [m for m in reported if any(f in m for f in CACHE_KEYWORD)] == []

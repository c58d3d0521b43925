"""nq_5k builds identically on every machine, with the documented shape."""

from collections import Counter

from rag_bench.scoring.retrieval import has_answer
from rag_bench.task_store import load_task

# sha256 of the prepared files; a change here is a new task version, not a test fix.
PINNED = {
    "corpus.jsonl": "3bf5e53ed23e398b5d20f9928b952706a1afb0199897743fe20d9a605151b670",
    "queries.jsonl": "c4365cbedf9554f07545ffa134d37a56fe16bcba809c0b5f79839ed4f454c23e",
    "qrels/train.tsv": "9f88f90601ed52d6e3875e9a3c017396aa83b02163b764db6f180b7f492d9ec4",
    "qrels/dev.tsv": "449724eda730a435f456f4d3b61ed0b83b3c7e690cc31eace32663cdb0a5f326",
    "qrels/test.tsv": "4a33dbf919db54f84dc16d4063865f80b3034fe1ba71af7ed5483bc3b8e8edac",
}


def test_fresh_build_matches_the_pinned_checksums(shared_data, fresh_cache):
    task = load_task("nq_5k")
    assert task.files_sha256 == PINNED
    assert task.path.is_relative_to(fresh_cache)


def test_corpus_composition(nq_5k):
    assert len(nq_5k.corpus) == 5000
    origin = Counter(p.doc_id.split("-")[0] for p in nq_5k.corpus)
    assert origin == {"nq": 2600, "flashrag": 1000, "hotpot": 1400}
    assert len({p.doc_id for p in nq_5k.corpus}) == 5000


def test_splits_are_disjoint_and_about_70_10_20(nq_5k):
    sizes = {split: len(nq_5k.split(split)) for split in ("train", "dev", "test")}
    assert sizes == {"train": 1858, "dev": 265, "test": 532}
    texts = {split: {q.text for q in nq_5k.split(split)} for split in sizes}
    assert not texts["train"] & texts["test"] and not texts["dev"] & texts["test"] and not texts["train"] & texts["dev"]


def test_every_question_has_its_gold_passage_and_evidence(nq_5k):
    by_id = nq_5k.passages_by_id
    for q in nq_5k.questions:
        assert len(q.gold_doc_ids) == 1 and q.gold_doc_ids[0].startswith("nq-gold-")
        passage = by_id[q.gold_doc_ids[0]].text
        assert q.gold_evidence and all(sentence in passage for sentence in q.gold_evidence)
    with_answer = sum(any(has_answer(s, q.answers) for s in q.gold_evidence) for q in nq_5k.questions)
    assert with_answer / len(nq_5k.questions) > 0.9


def test_second_load_reuses_the_prepared_folder(nq_5k):
    again = load_task("nq_5k")
    assert again.path == nq_5k.path and again.files_sha256 == nq_5k.files_sha256

"""musique: 100 MuSiQue questions over their 1,890 paragraphs, evaluation only, with pinned prepared files."""

from collections import Counter

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.scoring.retrieval import has_answer
from rag_bench.task_store import load_task

# sha256 of the prepared files; a change here is a new task version, not a test fix.
PINNED = {
    "corpus.jsonl": "8617345032d243370b4312d321af59d6bfc00a6c84261372e6237a9293b443a0",
    "queries.jsonl": "5bb9193e6b9684f7d215f5c40f93485725521396504dba5ac799433cfb2730f1",
    "qrels/test.tsv": "5106fbb3110d13dd01b4920653fa1b47215f7fc875babcd40b8a1e74abb5b2af",
}


@pytest.fixture(scope="module")
def musique(shared_data, session_cache):
    return load_task("musique")


def test_fresh_build_matches_the_pinned_checksums(shared_data, fresh_cache):
    task = load_task("musique")
    assert task.files_sha256 == PINNED and task.path.is_relative_to(fresh_cache)


def test_shape(musique):
    assert len(musique.corpus) == 1890 == len({(p.title, p.text) for p in musique.corpus})
    assert len(musique.questions) == 100
    assert Counter(len(q.gold_doc_ids) for q in musique.questions) == {2: 68, 3: 27, 4: 5}
    assert all(q.meta["hops"] == len(q.gold_doc_ids) for q in musique.questions)


def test_evaluation_only_one_test_split_and_train_is_refused(musique):
    assert musique.card.splits == ("test",) and "EVALUATION ONLY" in musique.card.description
    assert len(musique.split("test")) == 100
    with pytest.raises(RagBenchError, match="no split 'train'.*test"):
        musique.split("train")


def test_gold_passages_are_in_the_corpus_and_evidence_is_theirs(musique):
    by_id = musique.passages_by_id
    for q in musique.questions:
        assert len(set(q.gold_doc_ids)) == len(q.gold_doc_ids) and all(d in by_id for d in q.gold_doc_ids)
        texts = [by_id[d].text for d in q.gold_doc_ids]
        assert q.gold_evidence and all(any(s in text for text in texts) for s in q.gold_evidence)
    final = sum(any(has_answer(s, q.answers) for s in q.gold_evidence) for q in musique.questions)
    assert final / len(musique.questions) > 0.9


def test_paragraph_ids_agree_with_the_nq_corpus_family(musique):
    family = load_task("nq_17k").passages_by_id
    shared = [p for p in musique.corpus if p.doc_id in family]
    assert len(shared) == 1805 and all(family[p.doc_id] == p for p in shared)

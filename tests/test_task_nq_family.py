"""The NQ corpus family (nq_1k, nq_2k5, nq_5k, nq_10k, nq_17k): sizes, gold inclusion, nesting, pinned files, sources."""

from __future__ import annotations

import copy
import gzip
import shutil
from collections import Counter

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.registry import registry
from rag_bench.sources import download_path, locate
from rag_bench.task import TaskCard, TaskDefinition
from rag_bench.task_store import load_task, prepare_definition
from rag_bench_plugins.builtin_tasks import nq_family

from .helpers import serving

HIPPORAG_COMMIT = "3d95d255a8db0c1699b853cfb4fbe5056708162d"
HIPPORAG_SOURCES = ("twowiki_corpus", "musique_corpus", "hotpotqa_train_corpus")

#: The family from smallest to largest; nq_5k is its 5,000-passage member.
FAMILY = ("nq_1k", "nq_2k5", "nq_5k", "nq_10k", "nq_17k")

#: passages, gold passages, questions per split (train, dev, test)
SHAPE = {
    "nq_1k": (1000, 520, (373, 55, 99)),
    "nq_2k5": (2500, 1300, (907, 142, 272)),
    "nq_5k": (5000, 2600, (1858, 265, 532)),
    "nq_10k": (10000, 2600, (1858, 265, 532)),
    "nq_17k": (17328, 2600, (1858, 265, 532)),
}

#: queries and qrels of the members with every question are nq_5k's (tests/test_task_nq5k.py pins the same digests)
NQ_5K_QUESTION_FILES = {
    "queries.jsonl": "c4365cbedf9554f07545ffa134d37a56fe16bcba809c0b5f79839ed4f454c23e",
    "qrels/train.tsv": "9f88f90601ed52d6e3875e9a3c017396aa83b02163b764db6f180b7f492d9ec4",
    "qrels/dev.tsv": "449724eda730a435f456f4d3b61ed0b83b3c7e690cc31eace32663cdb0a5f326",
    "qrels/test.tsv": "4a33dbf919db54f84dc16d4063865f80b3034fe1ba71af7ed5483bc3b8e8edac",
}

# sha256 of the prepared files; a change here is a new task version, not a test fix.
PINNED = {
    "nq_1k": {
        "corpus.jsonl": "3d59c47b85a105d0d69b470d38703fe6c1edc19c9f1edd48b204f4cc1a6cc36d",
        "queries.jsonl": "5e091f8513869b7e378a230c0326fd0c588c81f9b045b1e361e642edc3664b5c",
        "qrels/train.tsv": "97e5b4381a94ac782f00829745aaf21de35d1877e11c4185e333aedfe6869eb5",
        "qrels/dev.tsv": "ddf4dc82c91f8a26d46aff2c5538d814f626c4e4fd190b1b5e82309968c417f1",
        "qrels/test.tsv": "10b81c9f2a0e20a839273d900d6b2e16b98efb27b077301c80b80c78d7e74281",
    },
    "nq_2k5": {
        "corpus.jsonl": "cff5c39050b237cf7fbbe74d015b66fa4ba81d6deee836f401e859932a1dd321",
        "queries.jsonl": "703ae1d3384f1cbd48a901de64cd767dbd1705ccc1d01eb902cf598f204db4de",
        "qrels/train.tsv": "49756162267f7e6b342d75785e7e32b8c6a8f592887c3b784adb93f5bbecbcdb",
        "qrels/dev.tsv": "664ff9299bb2ae9deee0715b36597aa1156ccb291d7a0c1c29d1210ac7160962",
        "qrels/test.tsv": "380bc9916f8aeaafe5140f95de3d3d08a66da6d78f4734fb5894c7e73bf51ecd",
    },
    "nq_10k": {"corpus.jsonl": "c3ef339cb2e48cf34fc56d4d90989d5fe46dfcd9b7fc99e2a5c9b6f27937b5e3", **NQ_5K_QUESTION_FILES},
    "nq_17k": {"corpus.jsonl": "cd8bc06917f85839aba0afd878f5ae8f591907a9dc968a73d4c4112b6499d867", **NQ_5K_QUESTION_FILES},
}


@pytest.fixture(scope="module")
def family(shared_data, session_cache):
    """Every member, prepared once from the shared raw files (nq_5k included)."""
    return {name: load_task(name) for name in FAMILY}


def card(name: str) -> TaskCard:
    return registry().tasks.get(name).card


def origin_counts(task) -> Counter:
    return Counter(p.doc_id.rsplit("-", 1)[0] for p in task.corpus)


def test_every_member_is_registered_with_the_family_builder():
    assert set(nq_family.MEMBERS) == set(FAMILY) - {"nq_5k"}
    for name in nq_family.MEMBERS:
        assert registry().tasks.get(name).build is nq_family.build
        assert card(name).params()["corpus_size"] == SHAPE[name][0]
        assert card(name).params()["gold_passages"] == SHAPE[name][1]


@pytest.mark.parametrize("name", nq_family.MEMBERS)
def test_prepared_files_match_the_pinned_checksums(family, name):
    assert family[name].files_sha256 == PINNED[name]


@pytest.mark.parametrize("name", FAMILY)
def test_sizes_and_split_counts(family, name):
    passages, gold, per_split = SHAPE[name]
    task = family[name]
    assert len(task.corpus) == passages == len({p.doc_id for p in task.corpus})
    assert origin_counts(task)["nq-gold"] == gold
    assert tuple(len(task.split(split)) for split in ("train", "dev", "test")) == per_split


def test_small_members_keep_nq_5k_ratio_of_gold_to_distractors(family):
    ratio = SHAPE["nq_5k"][1] / SHAPE["nq_5k"][0]
    for name in ("nq_1k", "nq_2k5"):
        passages, gold, _ = SHAPE[name]
        assert gold == round(passages * ratio)


def test_the_largest_member_is_the_whole_pool(family):
    assert origin_counts(family["nq_17k"]) == {
        "nq-gold": 2600, "flashrag": 1000, "hotpot": 4840, "2wiki": 6114, "musique": 1805, "hotpottrain": 969,
    }
    # no distractor repeats another passage, even up to whitespace (nq_5k's gold holds 12 such pairs of its own)
    key = {p.doc_id: nq_family.paragraph_key(p.title, p.text) for p in family["nq_17k"].corpus}
    distractors = [k for doc_id, k in key.items() if not doc_id.startswith("nq-gold-")]
    gold = {k for doc_id, k in key.items() if doc_id.startswith("nq-gold-")}
    assert len(set(distractors)) == len(distractors) == 14728 and not gold & set(distractors)


@pytest.mark.parametrize("name", FAMILY)
def test_every_kept_question_has_its_gold_passage_and_no_answerable_question_is_dropped(family, name):
    task = family[name]
    ids = {p.doc_id for p in task.corpus}
    assert all(q.gold_doc_ids and set(q.gold_doc_ids) <= ids for q in task.questions)
    answerable = [q.qid for q in family["nq_5k"].questions if q.gold_doc_ids[0] in ids]
    assert [q.qid for q in task.questions] == answerable


def test_each_corpus_contains_every_smaller_one(family):
    for smaller, larger in zip(FAMILY, FAMILY[1:]):
        small, large = set(family[smaller].corpus), set(family[larger].corpus)
        assert small < large, f"{smaller} is not inside {larger}"
        assert {q.qid for q in family[smaller].questions} <= {q.qid for q in family[larger].questions}


def test_questions_and_splits_agree_with_nq_5k(family):
    reference = {q.qid: q for q in family["nq_5k"].questions}
    for name in nq_family.MEMBERS:
        for q in family[name].questions:
            assert q == reference[q.qid] and q.meta == reference[q.qid].meta, f"{name} {q.qid}"


def test_the_rule_at_5000_passages_rebuilds_nq_5k_exactly(family, shared_data):
    raw = copy.deepcopy(dict(card("nq_10k").raw))
    raw.update(name="nq_family_5k_check")
    raw["build"].update(corpus_size=5000, gold_passages=2600)
    sources = {s.name: shared_data / s.path for s in card("nq_10k").sources}
    corpus, questions = nq_family.build(TaskCard.from_dict(raw), sources)
    assert corpus == family["nq_5k"].corpus
    assert questions == family["nq_5k"].questions


def test_member_cards_differ_only_in_name_size_and_sources():
    nq_5k_sources = {s.name: s for s in card("nq_5k").sources}
    shared = {key: card("nq_17k").raw[key] for key in ("construction", "splits", "k", "metrics", "default_split")}
    for name in nq_family.MEMBERS:
        member = card(name)
        assert {key: member.raw[key] for key in shared} == shared
        assert {k: v for k, v in member.params().items() if k not in ("corpus_size", "gold_passages")} == {
            k: v for k, v in card("nq_17k").params().items() if k not in ("corpus_size", "gold_passages")
        }
        extra = {s.name for s in member.sources} - set(nq_5k_sources)
        assert [s for s in member.sources if s.name in nq_5k_sources] == list(nq_5k_sources.values())
        # members whose distractors all come from nq_5k's need only nq_5k's files
        assert extra == (set(HIPPORAG_SOURCES) if member.params()["corpus_size"] > 5000 else set())
    for spec in card("nq_17k").sources:
        if spec.name in HIPPORAG_SOURCES:
            assert f"/OSU-NLP-Group/HippoRAG/{HIPPORAG_COMMIT}/data/" in spec.url
            assert spec.sha256 and spec.content_sha256 and spec.sha256 != spec.content_sha256


# --- raw files: verified by sha256, downloaded from their origin when not in the data directory ---


def published_as_upstream(spec, stored) -> bytes:
    """The bytes the origin serves: the stored copy, or its decompressed content when we gzip'd it."""
    data = stored.read_bytes()
    return data if spec.url.endswith(".gz") else gzip.decompress(data)


@pytest.fixture()
def origin(tmp_path, shared_data):
    """A loopback HTTP server publishing nq_17k's sources as their origins do, plus a tampered copy of each."""
    root = tmp_path / "origin"
    root.mkdir()
    for spec in card("nq_17k").sources:
        name = spec.url.rsplit("/", 1)[1]
        original = published_as_upstream(spec, shared_data / spec.path)
        (root / name).write_bytes(original)
        (root / f"tampered-{name}").write_bytes(original.replace(b"e", b"E", 1))
    with serving(root) as url:
        yield url


def served_from(url: str, prefix: str = "") -> TaskDefinition:
    """nq_17k with every source URL pointing at `url` (file names as upstream, optionally prefixed)."""
    raw = copy.deepcopy(dict(card("nq_17k").raw))
    for spec in raw["sources"].values():
        spec["url"] = f"{url}/{prefix}{spec['url'].rsplit('/', 1)[1]}"
    return TaskDefinition(TaskCard.from_dict(raw), nq_family.build)


def test_without_a_data_directory_every_source_is_downloaded_verified_and_builds_the_pinned_task(origin, fresh_cache, monkeypatch):
    monkeypatch.delenv("RAG_BENCH_DATA_DIR", raising=False)
    definition = served_from(origin)
    task = prepare_definition(definition)
    assert task.files_sha256 == PINNED["nq_17k"]
    for spec in definition.card.sources:
        assert download_path(spec).is_relative_to(fresh_cache) and download_path(spec).is_file()


@pytest.mark.parametrize("source", HIPPORAG_SOURCES)
def test_a_tampered_download_is_refused(origin, fresh_cache, monkeypatch, source):
    monkeypatch.delenv("RAG_BENCH_DATA_DIR", raising=False)
    spec = next(s for s in served_from(origin, prefix="tampered-").card.sources if s.name == source)
    with pytest.raises(RagBenchError, match=rf"(?s)source '{source}'.*does not match the card"):
        locate(spec)
    assert not download_path(spec).exists()


def test_a_corrupted_raw_file_is_refused_before_anything_is_built(tmp_path, shared_data, fresh_cache, monkeypatch):
    data = tmp_path / "data"
    for spec in card("nq_17k").sources:
        (data / spec.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / spec.path, data / spec.path)
    musique = next(s for s in card("nq_17k").sources if s.name == "musique_corpus")
    content = gzip.decompress((data / musique.path).read_bytes())
    (data / musique.path).write_bytes(gzip.compress(content.replace(b"Journal", b"Jurnal", 1), mtime=0))
    monkeypatch.setenv("RAG_BENCH_DATA_DIR", str(data))
    definition = served_from("http://127.0.0.1:9")  # nothing listens there: no network needed, none used
    with pytest.raises(RagBenchError) as info:
        prepare_definition(definition)
    message = str(info.value)
    assert "source 'musique_corpus'" in message and "sha256 differs" in message and "download failed" in message
    assert not (fresh_cache / "tasks").exists()

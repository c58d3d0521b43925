"""Reader depth apart from ranking depth, the `evidence_k` keyword, and provider metadata in the manifest."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from rag_bench import hookimpl
from rag_bench.cli import cli
from rag_bench.errors import RagBenchError
from rag_bench.plugins import register_plugin, reset_for_tests
from rag_bench.provider import EvidenceProvider, accepts_evidence_k
from rag_bench.runner import RunConfig, execute
from rag_bench.types import Hit, ProvidedEvidence

from .chat_server import ChatServer

LIMIT = 6
NUMBERED = re.compile(r"^\[\d+\] ", re.MULTILINE)


def evidence_in_prompts(server: ChatServer) -> list[int]:
    """How many numbered evidence texts each chat request carried."""
    return [len(NUMBERED.findall(body["messages"][0]["content"])) for body in server.requests if "messages" in body]


class TopPassages(EvidenceProvider):
    """Ranks the corpus in order; texts only for the top `evidence_k` (it records every call's arguments)."""

    calls: list[tuple[int, int | None]] = []

    def prepare(self, task, workdir):
        self.corpus = task.corpus

    def provide(self, questions, k, evidence_k=None):
        TopPassages.calls.append((k, evidence_k))
        depth = k if evidence_k is None else evidence_k
        hits = [Hit(p.doc_id, float(-i)) for i, p in enumerate(self.corpus[:k])]
        return [ProvidedEvidence(hits=list(hits), evidence=[p.text for p in self.corpus[:depth]]) for _ in questions]

    def metadata(self):
        return {"trained_on_corpus": True, "trained_splits": ["train"], "parameters_trained": 1234, "notes": "test"}


class KwargsProvider(TopPassages):
    def provide(self, questions, k, **kwargs):
        return super().provide(questions, k, **kwargs)


class OldSignature(TopPassages):
    def provide(self, questions, k):
        return super().provide(questions, k)


class BadMetadata(OldSignature):
    def metadata(self):
        return {"parameters_trained": "many"}


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register("top_passages", TopPassages)
        register("old_signature", OldSignature)
        register("bad_metadata", BadMetadata)


@pytest.fixture()
def plugin():
    register_plugin(Plugin(), "depth-test")
    TopPassages.calls = []
    yield
    reset_for_tests()


@pytest.fixture()
def server(monkeypatch):
    with ChatServer(api_key=None) as srv:
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        yield srv


def read_with(server: ChatServer) -> dict[str, str]:
    return {"model": server.models[0], "base_url": server.url}


def run(tmp_path, provider, **kwargs):
    return execute(RunConfig(provider=provider, task="nq_5k", limit=LIMIT, reader="none", runs_dir=tmp_path / "runs", **kwargs))


def test_the_reader_sees_reader_k_texts_and_retrieval_metrics_still_use_every_hit(nq_5k, server, tmp_path):
    result = execute(RunConfig(provider="bm25", task="nq_5k", limit=LIMIT, ks=(1, 5, 20), reader="openai",
                               reader_params=read_with(server), reader_k=2, runs_dir=tmp_path / "runs"))
    assert evidence_in_prompts(server) == [2] * LIMIT
    assert result.manifest["reader_k"] == 2 and result.manifest["ks"] == [1, 5, 20]
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    assert all(len(r["evidence"]) == 20 and len(r["hits"]) == 20 for r in records)  # bm25 keeps every text
    assert "answer_recall@20" in result.metrics["aggregate"] and "recall@20" in result.metrics["aggregate"]


def test_reader_depth_defaults_to_5_is_capped_at_the_largest_k_and_is_part_of_the_configuration(nq_5k, server, tmp_path):
    five = execute(RunConfig(provider="bm25", task="nq_5k", limit=3, ks=(1, 20), reader="openai",
                             reader_params=read_with(server), runs_dir=tmp_path / "runs"))
    assert evidence_in_prompts(server) == [5] * 3
    capped = execute(RunConfig(provider="bm25", task="nq_5k", limit=3, ks=(1, 3), reader="openai",
                               reader_params=read_with(server), runs_dir=tmp_path / "runs"))
    assert evidence_in_prompts(server)[3:] == [3] * 3
    assert five.manifest["reader_k"] == 5 and capped.manifest["reader_k"] == 3
    deeper = run(tmp_path, "bm25", ks=(1, 20), reader_k=6)
    shallower = run(tmp_path, "bm25", ks=(1, 20), reader_k=4)
    assert deeper.path != shallower.path  # reader depth is in the configuration hash


def test_the_summary_line_names_the_reader_depth(nq_5k, tmp_path):
    result = CliRunner().invoke(cli, ["run", "-p", "bm25", "-t", "nq_5k", "--limit", "3", "--reader", "none",
                                      "--reader-k", "3", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "reader none sees the top 3 of 20" in result.output
    bad = CliRunner().invoke(cli, ["run", "-p", "bm25", "-t", "nq_5k", "--limit", "3", "--reader", "none",
                                   "--reader-k", "0", "--runs-dir", str(tmp_path)])
    assert bad.exit_code == 1 and "--reader-k must be at least 1" in bad.output


def test_a_provider_that_honours_evidence_k_gets_it_and_deeper_evidence_metrics_are_absent(nq_5k, plugin, tmp_path):
    result = run(tmp_path, "top_passages")
    assert set(TopPassages.calls) == {(20, 5)}
    aggregate, per_question = result.metrics["aggregate"], result.metrics["per_question"]
    assert {"answer_recall@1", "answer_recall@5", "evidence_rougeL", "evidence_rougeL_max@5", "recall@20"} <= set(aggregate)
    assert "answer_recall@20" not in aggregate  # 5 texts for 20 hits: unknown, not zero
    assert all("answer_recall@20" not in scores for scores in per_question.values())
    shallow = run(tmp_path, "top_passages", reader_k=3)
    assert "evidence_rougeL_max@5" not in shallow.metrics["aggregate"] and "answer_recall@1" in shallow.metrics["aggregate"]


def test_a_provider_with_the_old_signature_keeps_working(nq_5k, plugin, tmp_path):
    result = run(tmp_path, "old_signature")
    assert set(TopPassages.calls) == {(20, None)}
    assert "answer_recall@20" in result.metrics["aggregate"]
    assert accepts_evidence_k(TopPassages()) and accepts_evidence_k(KwargsProvider())
    assert not accepts_evidence_k(OldSignature())


def test_metadata_goes_into_the_manifest_with_defaults_filled(nq_5k, plugin, tmp_path):
    meta = run(tmp_path, "top_passages").manifest["provider"]["metadata"]
    assert meta == {"trained_on_corpus": True, "trained_splits": ["train"], "parameters_trained": 1234,
                    "base_model": None, "base_revision": None, "notes": "test"}
    bm25 = run(tmp_path, "bm25").manifest["provider"]["metadata"]
    assert bm25.pop("whole_text_bytes") > 0  # the equal-bytes baselines' reference (docs/PROVIDERS.md)
    assert bm25 == {"trained_on_corpus": False, "trained_splits": [], "parameters_trained": 0, "base_model": None,
                    "base_revision": None, "evidence_bytes": None}
    with pytest.raises(RagBenchError, match=r"provider bad_metadata: metadata\(\)\['parameters_trained'\] must be int"):
        run(tmp_path, "bad_metadata")

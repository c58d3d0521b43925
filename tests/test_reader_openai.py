"""The `openai` reader end to end through the runner and the CLI, against a real loopback server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.prompting import clean_answer, load_template
from rag_bench.runner import execute
from rag_bench.scoring.answer import exact_match, f1_score

from .chat_server import ChatServer, reader_config

LIMIT = 6


@pytest.fixture()
def questions(nq_5k):
    return nq_5k.split("test")[:LIMIT]


def scripted(questions):
    """Raw server replies per question: exact, labelled, padded, wrong, partly right."""
    golds = [q.answers[0] for q in questions]
    raw = [golds[0], f'Answer: "{golds[1]}".', f"The {golds[2]}\nBecause the evidence says so.", "Wrong answer entirely",
           f"{golds[4]} and more words", f"`{golds[5]}`"]
    return {f"Question: {q.text}": reply for q, reply in zip(questions, raw)}


@pytest.fixture()
def server(questions, monkeypatch):
    with ChatServer(answers=scripted(questions)) as srv:
        monkeypatch.setenv("OPENAI_API_KEY", srv.api_key)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        yield srv


def test_answers_flow_into_em_and_f1_exactly(server, questions, tmp_path):
    result = execute(reader_config(server, tmp_path, limit=LIMIT))
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    by_qid = {r["qid"]: r for r in records}
    replies = scripted(questions)
    em, f1 = [], []
    for q in questions:
        expected = clean_answer(replies[f"Question: {q.text}"])
        assert by_qid[q.qid]["answer"] == expected and by_qid[q.qid]["status"] == "ok"
        per_q = result.metrics["per_question"][q.qid]
        assert per_q["em"] == exact_match(expected, q.answers)
        assert per_q["f1"] == pytest.approx(f1_score(expected, q.answers))
        em.append(per_q["em"])
        f1.append(per_q["f1"])
    assert 0 < sum(em) < LIMIT  # the script has right and wrong answers
    assert result.metrics["aggregate"]["em"]["value"] == pytest.approx(sum(em) / LIMIT)
    assert result.metrics["aggregate"]["f1"]["value"] == pytest.approx(sum(f1) / LIMIT)
    assert result.metrics["counts"] == {"questions": LIMIT, "ok": LIMIT, "failed": 0}
    assert server.completions == LIMIT


def test_requests_use_the_template_temperature_zero_and_numbered_evidence(server, questions, tmp_path):
    result = execute(reader_config(server, tmp_path, limit=2))
    template = load_template()
    record = json.loads((result.path / "records.jsonl").read_text().splitlines()[0])
    sent = {body["messages"][0]["content"]: body for body in server.requests if "messages" in body}
    prompt = template.render(record["question"], record["evidence"])
    assert prompt in sent
    body = sent[prompt]
    assert body["temperature"] == 0 and body["model"] == "test-model" and len(body["messages"]) == 1
    assert "[1] " in prompt and "[3] " in prompt and "[4] " not in prompt  # k = 1,3 -> three passages


def test_manifest_has_prompt_settings_usage_and_no_key(server, tmp_path):
    result = execute(reader_config(server, tmp_path, limit=3, reader_params={"price_input_per_1m": "2.0", "price_output_per_1m": "8"}))
    manifest = json.loads((result.path / "manifest.json").read_text())
    settings = manifest["reader"]["settings"]
    assert settings["prompt_template"] == load_template().text and settings["temperature"] == 0.0
    assert settings["base_url"] == server.url and settings["api_key_env"] == "OPENAI_API_KEY"
    assert server.api_key not in json.dumps(manifest)
    prompt_tokens = sum(len(" ".join(m["content"] for m in b["messages"]).split()) for b in server.requests if "messages" in b)
    usage = manifest["usage"]
    assert usage["prompt_tokens"] == prompt_tokens
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["cost_usd"] == pytest.approx((2.0 * usage["prompt_tokens"] + 8.0 * usage["completion_tokens"]) / 1e6)


def test_cached_rerun_makes_no_calls(server, tmp_path):
    first = execute(reader_config(server, tmp_path, limit=LIMIT))
    assert server.completions == LIMIT
    resumed = execute(reader_config(server, tmp_path, limit=LIMIT))
    assert resumed.computed == 0
    fresh = execute(reader_config(server, tmp_path, limit=LIMIT, overwrite=True))
    assert fresh.computed == LIMIT and server.completions == LIMIT
    records = [json.loads(line) for line in (fresh.path / "records.jsonl").read_text().splitlines()]
    assert all(r["reader_info"]["cached"] for r in records)
    assert fresh.metrics["aggregate"]["em"] == first.metrics["aggregate"]["em"]


def test_a_damaged_cache_entry_is_a_miss_and_is_rewritten(server, tmp_path):
    from rag_bench.call_cache import CallCache, call_key

    execute(reader_config(server, tmp_path, limit=1))
    key = call_key({"url": f"{server.url}/chat/completions", "body": server.requests[-1]})
    entry = CallCache().root / key[:2] / f"{key}.json"
    assert json.loads(entry.read_text())["body"]  # the call is cached under (endpoint URL, request body)
    entry.write_text("{not json", encoding="utf-8")
    again = execute(reader_config(server, tmp_path, limit=1, overwrite=True))
    assert server.completions == 2 and again.metrics["counts"]["failed"] == 0
    assert json.loads(entry.read_text())["content_type"].startswith("application/json")


def test_runtime_settings_do_not_change_the_run(server, tmp_path):
    a = execute(reader_config(server, tmp_path, limit=2, reader_params={"concurrency": "1"}))
    b = execute(reader_config(server, tmp_path, limit=2, reader_params={"concurrency": "4", "max_retries": "1"}))
    assert a.path == b.path and b.computed == 0


def test_concurrency_bounds_calls_in_flight(questions, tmp_path, monkeypatch):
    with ChatServer(latency_s=0.15) as slow:
        monkeypatch.setenv("OPENAI_API_KEY", slow.api_key)
        execute(reader_config(slow, tmp_path, limit=LIMIT, reader_params={"concurrency": "3", "cache": "false"}))
        assert slow.max_in_flight == 3


@pytest.mark.parametrize("overlap, most_in_flight", [(True, 3), (False, 2)])
def test_the_next_batch_is_sent_while_this_one_is_read_under_one_bound(questions, tmp_path, monkeypatch, overlap, most_in_flight):
    # Batches of 2 under a bound of 3: only the next batch's calls can fill the third slot.
    with ChatServer(latency_s=0.3) as slow:
        monkeypatch.setenv("OPENAI_API_KEY", slow.api_key)
        result = execute(reader_config(slow, tmp_path, limit=6, batch_size=2, overlap=overlap,
                                       reader_params={"concurrency": "3", "cache": "false"}))
        assert slow.max_in_flight == most_in_flight and slow.completions == 6
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in records] == [q.qid for q in questions[:6]] and {r["status"] for r in records} == {"ok"}


def test_prompt_file_overrides_the_template(server, tmp_path):
    custom = tmp_path / "prompt.txt"
    custom.write_text("CUSTOM PROMPT\n{evidence}\nQ: {question}\nA:", encoding="utf-8")
    result = execute(reader_config(server, tmp_path, limit=1, reader_params={"prompt_file": str(custom)}))
    assert all(b["messages"][0]["content"].startswith("CUSTOM PROMPT\n[1] ") for b in server.requests if "messages" in b)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["reader"]["settings"]["prompt_template"] == custom.read_text()
    custom.write_text("no placeholders here", encoding="utf-8")
    with pytest.raises(RagBenchError, match="lacks {evidence} and {question}"):
        execute(reader_config(server, tmp_path, limit=1, reader_params={"prompt_file": str(custom)}))


def test_no_retrieval_prompt_says_no_evidence(server, tmp_path):
    execute(reader_config(server, tmp_path, provider="no_retrieval", limit=1))
    (body,) = [b for b in server.requests if "messages" in b]
    assert "Evidence:\n(no evidence)\n" in body["messages"][0]["content"]


def test_cli_reads_through_a_local_server(server, tmp_path):
    env = {**os.environ, "OPENAI_API_KEY": server.api_key}
    cmd = [sys.executable, "-m", "rag_bench.cli", "run", "-p", "bm25", "-t", "nq_5k", "--limit", "3", "-k", "1,3",
           "--reader", "openai", "--reader-base-url", server.url, "--reader-model", "test-model",
           "--reader-concurrency", "2", "--runs-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\nem " in done.stdout and "\nf1 " in done.stdout
    assert server.completions == 3

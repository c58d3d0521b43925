"""One JSON Lines reader (`rag_bench.jsonl.read_jsonl`) for every file of rows: strict by default, read-only always.

A records file of a run killed mid-write ends in a partial line. Readers skip it
and leave the file's bytes alone (the leaderboard reads runs that may yet be
resumed); only the next append of a resumed run cuts it off (`repair_torn_tail`).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.jsonl import dumps, read_jsonl, repair_torn_tail
from rag_bench.leaderboard.collect import collect_entries
from rag_bench.run_dir import RunDir

ROWS = [{"qid": "q1", "status": "failed"}, {"qid": "q2", "status": "ok"}, {"qid": "q1", "status": "ok"}]
WHOLE = "".join(dumps(row) + "\n" for row in ROWS).encode()
TORN = WHOLE + b'{"qid":"q3","answer":"Z\xc3'  # cut inside a two-byte UTF-8 character


def test_strict_reading_takes_a_last_line_without_newline_and_names_a_bad_one(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(WHOLE + b'{"qid":"q3"}')
    assert [row["qid"] for row in read_jsonl(path)] == ["q1", "q2", "q1", "q3"]
    path.write_bytes(WHOLE + b'{"qid":"q3",')
    with pytest.raises(RagBenchError, match=r"rows.jsonl:4: malformed JSON \(.*\); fix or remove that line"):
        list(read_jsonl(path))
    path.write_bytes(WHOLE + b"[1]\n")
    with pytest.raises(RagBenchError, match=r"rows.jsonl:4: expected a JSON object, got list"):
        list(read_jsonl(path))
    with pytest.raises(RagBenchError, match=r"rows.jsonl:1: missing required field\(s\) answer"):
        list(read_jsonl(path, required=("qid", "answer")))


def test_skipping_a_torn_tail_reads_the_whole_lines_and_leaves_the_bytes(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(TORN)
    assert list(read_jsonl(path, torn_tail="skip")) == ROWS
    path.write_bytes(WHOLE + b'{"qid":"q3"}')  # whole JSON, but its newline never written: an unfinished append
    assert list(read_jsonl(path, torn_tail="skip")) == ROWS
    assert path.read_bytes() == WHOLE + b'{"qid":"q3"}'
    with pytest.raises(ValueError, match="torn_tail"):
        list(read_jsonl(path, torn_tail="truncate"))


def test_gzip_files_and_crlf_lines_read_as_before(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(WHOLE.replace(b"\n", b"\r\n")))
    assert list(read_jsonl(path, required=("qid",))) == ROWS


def test_repair_cuts_only_the_torn_tail(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(WHOLE)
    assert repair_torn_tail(path) is False and path.read_bytes() == WHOLE
    path.write_bytes(WHOLE + b'{"text":"' + b"x" * 200_000)  # a tail longer than one read-back block
    assert repair_torn_tail(path) is True and path.read_bytes() == WHOLE
    path.write_bytes(b'{"qid":')  # not one whole line
    assert repair_torn_tail(path) is True and path.read_bytes() == b""
    assert repair_torn_tail(tmp_path / "missing.jsonl") is False


def test_run_dir_reads_read_only_and_repairs_when_it_appends_again(tmp_path):
    run = RunDir(tmp_path)
    run.records_path.write_bytes(TORN)
    assert run.read_records() == {"q1": ROWS[2], "q2": ROWS[1]}
    assert list(run.read_records()) == ["q1", "q2"]  # latest per qid, in the order of first appearance
    assert run.records_path.read_bytes() == TORN
    run.append_records([{"qid": "q3", "status": "ok"}])  # resuming: the torn line is cut, the new row starts a line
    assert run.records_path.read_bytes() == WHOLE + b'{"qid":"q3","status":"ok"}\n'
    assert set(run.read_records()) == {"q1", "q2", "q3"}


def test_run_dir_names_a_corrupted_record(tmp_path):
    run = RunDir(tmp_path)
    run.records_path.write_bytes(WHOLE + b"not json\n" + WHOLE)
    with pytest.raises(RagBenchError, match=r"records.jsonl:4: corrupted record: .*rerun with --overwrite to start fresh"):
        run.read_records()
    run.records_path.write_bytes(WHOLE + b'{"status":"ok"}\n')
    with pytest.raises(RagBenchError, match=r"records.jsonl:4: corrupted record: missing required field\(s\) qid"):
        run.read_records()


def test_judgements_are_latest_per_judge_and_question(tmp_path):
    run = RunDir(tmp_path)
    rows = [{"judge": "a", "qid": "q1", "v": 0}, {"judge": "b", "qid": "q1", "v": 1}, {"judge": "a", "qid": "q1", "v": 2}]
    run.append_judgements(rows)
    with open(run.judgements_path, "ab") as fh:
        fh.write(b'{"judge":"b"')
    assert run.read_judgements() == {("a", "q1"): rows[2], ("b", "q1"): rows[1]}


def _finished_run(folder: Path) -> RunDir:
    run = RunDir(folder)
    folder.mkdir(parents=True)
    run.write_manifest({"status": "complete", "task": {"name": "t", "split": "test"}, "provider": {"name": "p"},
                        "reader": {"name": "none"}, "config_hash": "abc", "ended": "2026-01-01T00:00:00Z"})
    run.write_metrics({"aggregate": {}, "counts": {}, "per_question": {}})
    return run


def test_the_leaderboard_reads_a_torn_records_file_without_changing_it(tmp_path):
    run = _finished_run(tmp_path / "runs" / "t" / "p__test__none__abc")
    run.records_path.write_bytes(TORN)
    (entry,) = collect_entries(tmp_path / "runs")
    assert [record["qid"] for record in entry.records()] == ["q1", "q2"]
    assert next(entry.records()) == ROWS[2]
    assert run.records_path.read_bytes() == TORN


def test_memory_passages_file_errors_keep_their_message(tmp_path):
    from rag_bench_plugins.llm_memory.cli import read_passages

    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps({"doc_id": 7, "text": "Zorblax is a moon."}) + "\n", encoding="utf-8")
    (passage,) = read_passages(path)
    assert (passage.doc_id, passage.title, passage.text) == ("7", "", "Zorblax is a moon.")
    for bad in ('{"doc_id": "x"}', '{"doc_id": "x", "text": ', '["x"]'):
        path.write_text(json.dumps({"doc_id": "a", "text": "b"}) + "\n" + bad + "\n", encoding="utf-8")
        with pytest.raises(RagBenchError, match=r"new.jsonl:2: expected a JSON object with doc_id and text \(.+\)"):
            read_passages(path)


def test_a_lucene_raw_document_that_is_not_a_json_object_is_its_contents():
    from rag_bench_plugins.bm25.prebuilt import passage_from_raw

    assert passage_from_raw("d", '{"title": "T", "text": "x"}').text == "x"
    assert (passage_from_raw("d", "Title\ntext").title, passage_from_raw("d", "Title\ntext").text) == ("Title", "text")
    assert passage_from_raw("d", "1984").text == "1984"
    assert passage_from_raw("d", '"quoted"').text == '"quoted"'

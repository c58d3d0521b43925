"""`rag-bench analyze multihop`: buckets, type split, recomputation from records, published results, CLI, errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from rag_bench.study.analysis.cli import analyze
from rag_bench.study.analysis.multihop import (
    answer_bearing,
    multihop_table,
    one_hop_detail,
    select_entries,
)
from rag_bench.study.analysis.multihop_render import render_markdown
from rag_bench.cli import ErrorHandlingGroup
from rag_bench.errors import RagBenchError
from rag_bench.leaderboard.collect import collect_entries
from rag_bench.leaderboard.publish import export_results
from rag_bench.types import Passage, Question

from .helpers import run_quietly

TASK = "hotpotqa_5k"
# The test split lists its 50 bridge questions first: 60 questions hold both types.
LIMIT = 60


@pytest.fixture(scope="module")
def hotpot(shared_data):
    from rag_bench.task_store import load_task

    return load_task(TASK)


@pytest.fixture(scope="module")
def runs(hotpot, tmp_path_factory):
    """bm25 and no_retrieval on the first 60 test questions (default cut-offs 1, 2, 5, 20)."""
    root = tmp_path_factory.mktemp("multihop")
    for provider in ("bm25", "no_retrieval"):
        run_quietly(root, provider, task=TASK, limit=LIMIT)
    return root / "runs"


@pytest.fixture(scope="module")
def result(runs, hotpot):
    return multihop_table(collect_entries(runs), TASK, ks=(2, 3, 5), loaded=hotpot)


def row_of(result, provider):
    (row,) = [r for r in result["rows"] if r["provider"] == provider]
    return row


def cell_of(row, kind, k):
    (cell,) = [c for c in row["cells"] if c["type"] == kind and c["k"] == k]
    return cell


def test_buckets_partition_the_questions_and_types_partition_the_rows(result):
    assert result["ks"] == [2, 3, 5] and result["types"] == {"all": LIMIT, "bridge": 50, "comparison": LIMIT - 50}
    for row in result["rows"]:
        assert row["values_from"] == {"2": "scores", "3": "records", "5": "scores"} and row["records"]
        for cell in row["cells"]:
            shares = cell["shares"]
            assert sum(shares.values()) == pytest.approx(1.0)
            assert sum(cell["one_detail"].values()) == pytest.approx(shares["one"])
            assert cell["all_gold"]["value"] <= cell["hit"]["value"]
            assert shares["both"] == pytest.approx(cell["all_gold"]["value"])
            assert shares["neither"] == pytest.approx(1 - cell["hit"]["value"])
        for k in result["ks"]:
            assert cell_of(row, "bridge", k)["n"] + cell_of(row, "comparison", k)["n"] == cell_of(row, "all", k)["n"]


def test_values_equal_a_hand_count_from_the_records_hits_and_gold_ids(result, runs, hotpot):
    (entry,) = [e for e in collect_entries(runs) if e.provider == "bm25"]
    gold = {q.qid: set(q.gold_doc_ids) for q in hotpot.questions}
    kinds = {q.qid: q.meta["type"] for q in hotpot.questions}
    for k in (2, 3):
        counts = {"both": 0, "one": 0, "neither": 0}
        bridge_hits = 0
        for record in entry.records():
            top = {doc for doc, _ in record["hits"][:k]}
            found = len(top & gold[record["qid"]])
            counts["both" if found == 2 else "one" if found == 1 else "neither"] += 1
            bridge_hits += found > 0 and kinds[record["qid"]] == "bridge"
        cell = cell_of(row_of(result, "bm25"), "all", k)
        assert {b: round(v * LIMIT) for b, v in cell["shares"].items()} == counts
        assert cell_of(row_of(result, "bm25"), "bridge", k)["hit"]["value"] == pytest.approx(bridge_hits / 50)
    for k in (2, 5):
        for metric in ("hit", "all_gold"):
            assert cell_of(row_of(result, "bm25"), "all", k)[metric] == entry.aggregate[f"{metric}@{k}"]
    # bm25 finds something at k=5: the check above is not all zeros
    assert cell_of(row_of(result, "bm25"), "all", 5)["shares"]["both"] > 0


def test_closed_book_rows_are_all_neither(result):
    for cell in row_of(result, "no_retrieval")["cells"]:
        assert cell["shares"] == {"both": 0.0, "one": 0.0, "neither": 1.0}
        assert not any(cell["one_detail"].values())


def test_answer_bearing_passages_and_one_hop_sub_buckets():
    passages = {
        "a": Passage("a", "Terry Richardson", "An American fashion photographer."),
        "b": Passage("b", "Annie Morton", "An American model, born 1970; she posed for Richardson."),
        "c": Passage("c", "Annie", "Annie is a musical; no tickets are left."),
    }
    question = Question("q", "Who is older?", ("Terry Richardson",), "test", gold_doc_ids=("a", "b"))
    assert answer_bearing(question, passages) == {"a"}  # "Richardson" alone is not the answer
    whole_words = Question("w", "?", ("Ann",), "test", gold_doc_ids=("b", "c"))
    assert answer_bearing(whole_words, passages) == frozenset()
    yes_no = Question("y", "Are both American?", ("no",), "test", gold_doc_ids=("a", "c"))
    assert answer_bearing(yes_no, passages) == frozenset()  # "no" occurs in c, but a yes/no answer is no span
    assert one_hop_detail({"a"}, ("a", "b"), frozenset({"a"})) == "answer_passage"
    assert one_hop_detail({"b"}, ("a", "b"), frozenset({"a"})) == "other_passage"
    assert one_hop_detail({"b"}, ("a", "b"), frozenset()) == "answer_in_neither"
    assert one_hop_detail({"b"}, ("a", "b"), frozenset({"a", "b"})) == "answer_in_both"


def test_paired_difference_against_closed_book_is_the_providers_own_score(runs, hotpot):
    result = multihop_table(collect_entries(runs), TASK, ks=(2,), focus="bm25", loaded=hotpot)
    assert row_of(result, "bm25")["focus"] and not row_of(result, "no_retrieval")["focus"]
    diffs = {(d["type"], d["metric"]): d for d in result["differences"]}
    assert set(diffs) == {(t, m) for t in ("all", "bridge", "comparison") for m in ("hit@2", "all_gold@2")}
    for (kind, metric), diff in diffs.items():
        agg = cell_of(row_of(result, "bm25"), kind, 2)[metric.split("@")[0]]
        assert diff["mean_diff"] == pytest.approx(agg["value"]) and diff["n"] == agg["n"]
        assert diff["baseline"] == "no_retrieval"
    markdown = render_markdown(result)
    assert "| **bm25** | all | 60 |" in markdown and "| bm25 | no_retrieval | all | 60 |" in markdown


def test_published_results_give_the_same_numbers_and_refuse_a_k_they_lack(runs, result, hotpot, tmp_path):
    export_results(collect_entries(runs), tmp_path / "results")
    published = multihop_table(collect_entries(tmp_path / "results"), TASK, ks=(2, 5), loaded=hotpot)
    for row in published["rows"]:
        assert not row["records"] and str(tmp_path) in row["source"]
        for cell in row["cells"]:
            assert cell["one_detail"] is None
            same = cell_of(row_of(result, row["provider"]), cell["type"], cell["k"])
            assert {key: cell[key] for key in ("n", "hit", "all_gold", "shares")} == \
                {key: same[key] for key in ("n", "hit", "all_gold", "shares")}
    with pytest.raises(RagBenchError, match=r"no per-question hit@3/all_gold@3 \(stored cut-offs: 1, 2, 5, 20\)"):
        multihop_table(collect_entries(tmp_path / "results"), TASK, ks=(3,), loaded=hotpot)
    with pytest.raises(RagBenchError, match="kept only the top 20 hits"):
        multihop_table(collect_entries(runs), TASK, ks=(50,), loaded=hotpot)


def test_the_latest_of_two_entries_of_one_provider_is_kept(runs):
    entries = collect_entries(runs)
    older = dataclasses.replace(entries[0], config_hash="older", date="2000-01-01T00:00:00+00:00")
    kept, dropped = select_entries([*entries, older], TASK)
    assert kept == sorted(entries, key=lambda e: e.provider)
    assert [(d["config_hash"], d["kept_config_hash"]) for d in dropped] == [("older", entries[0].config_hash)]


def test_questions_without_types_are_refused(runs, hotpot):
    entries = collect_entries(runs)
    untyped = dataclasses.replace(hotpot, questions=[dataclasses.replace(q, meta={}) for q in hotpot.questions])
    with pytest.raises(RagBenchError, match="has no question types"):
        multihop_table(entries, TASK, loaded=untyped)
    first = next(iter(entries[0].records()))["qid"]
    one_missing = dataclasses.replace(
        hotpot, questions=[dataclasses.replace(q, meta={}) if q.qid == first else q for q in hotpot.questions])
    with pytest.raises(RagBenchError, match=f"question {first} has no type"):
        multihop_table(entries, TASK, loaded=one_missing)


def invoke(*args):
    root = ErrorHandlingGroup(name="rag-bench", commands={"analyze": analyze})
    return CliRunner().invoke(root, ["analyze", "multihop", *map(str, args)])


def test_cli_writes_json_markdown_and_plot(runs, tmp_path):
    out = tmp_path / "analysis"
    done = invoke(runs, "--task", TASK, "-k", "2,5", "--out", out)
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == ["multihop.json", "multihop.md", "multihop.png"]
    saved = json.loads((out / "multihop.json").read_text(encoding="utf-8"))
    assert saved["ks"] == [2, 5] and saved["created"] and saved["command"][0] == "rag-bench"
    assert (out / "multihop.md").read_text(encoding="utf-8").strip() in done.stdout
    assert (out / "multihop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_without_rows_of_the_task_fails_in_one_line(runs, tmp_path):
    done = invoke(runs, "--task", "nq_5k", "--out", tmp_path / "none")
    assert done.exit_code == 1
    assert done.stderr.strip().count("\n") == 0
    assert "no finished runs or published results of task nq_5k (found: hotpotqa_5k)" in done.stderr
    assert not (tmp_path / "none").exists()

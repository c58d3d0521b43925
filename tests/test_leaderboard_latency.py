"""Latencies the board can compare: `rag-bench leaderboard measure` re-times the published rows in one sitting, and
the board and the report show only the sitting's latencies, saying which sitting they come from."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rag_bench.cli import cli
from rag_bench.leaderboard.collect import collect_entries
from rag_bench.leaderboard.latency import SITTING_FILE, command_settings, latency_note
from rag_bench.leaderboard.publish import export_results
from rag_bench.leaderboard.site import build_site
from rag_bench.runner import RunConfig, execute


@pytest.fixture(scope="module")
def results(nq_5k, tmp_path_factory):
    """bm25 and no_retrieval rows, published as the leaderboard keeps them."""
    runs = tmp_path_factory.mktemp("latency-runs")
    for provider in ("bm25", "no_retrieval"):
        argv = ["rag-bench", "run", "--provider", provider, "--task", "nq_5k", "--limit", "20", "--reader", "none"]
        execute(RunConfig(provider=provider, task="nq_5k", limit=20, reader="none", runs_dir=runs), argv=argv)
    out = tmp_path_factory.mktemp("latency-results")
    export_results(collect_entries(runs), out)
    return out


def test_settings_come_from_the_recorded_command_in_any_order():
    assert command_settings(["rag-bench", "run", "--provider", "dense", "-P", "model=minilm", "-P", "index=flat",
                             "--task", "nq_5k"]) == (("index", "flat"), ("model", "minilm"))
    assert command_settings(None) == ()


def test_without_a_sitting_the_latencies_are_said_to_be_incomparable(results):
    entries = collect_entries(results)
    assert all(e.value("latency_p50_ms") is not None for e in entries)
    assert "not comparable" in latency_note(entries)


def test_a_sitting_times_every_row_in_interleaved_rounds_and_replaces_their_latencies(results, tmp_path):
    own = {e.row_id: e.value("latency_p50_ms") for e in collect_entries(results)}
    done = CliRunner().invoke(cli, ["leaderboard", "measure", str(results), "--questions", "8", "--rounds", "2"])
    assert done.exit_code == 0, done.output
    sitting = json.loads((results / SITTING_FILE).read_text(encoding="utf-8"))
    assert set(sitting["rows"]) == set(own) and sitting["rounds"] == 2
    visits = [line for line in done.output.splitlines() if line.startswith("round ")]
    assert len(visits) == 4 and {v.split(": ")[1] for v in visits[:2]} == {v.split(": ")[1] for v in visits[2:]}
    for timed in sitting["rows"].values():
        assert len(timed["round_p50_ms"]) == 2 and timed["questions"] == 8
        assert timed["spread_ms"][0] <= timed["p50_ms"] <= max(timed["spread_ms"][1], timed["p95_ms"])
    entries = collect_entries(results)
    for entry in entries:
        agg = entry.aggregate["latency_p50_ms"]
        assert agg["value"] == sitting["rows"][entry.row_id]["p50_ms"] and "one sitting" in agg["sitting"]
    assert "one sitting" in latency_note(entries) and "not comparable" not in latency_note(entries)
    page = (build_site(entries, tmp_path / "site", plots=False).index).read_text(encoding="utf-8")
    assert "one sitting" in page


def test_a_row_the_sitting_did_not_time_shows_no_latency(results, tmp_path):
    if not (results / SITTING_FILE).is_file():
        CliRunner().invoke(cli, ["leaderboard", "measure", str(results), "--questions", "4", "--rounds", "1"])
    sitting = json.loads((results / SITTING_FILE).read_text(encoding="utf-8"))
    dropped = sorted(sitting["rows"])[0]
    del sitting["rows"][dropped]
    copy = tmp_path / "results"
    copy.mkdir()
    for path in results.rglob("*.json"):
        target = copy / path.relative_to(results)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (copy / SITTING_FILE).write_text(json.dumps(sitting), encoding="utf-8")
    latencies = {e.row_id: e.value("latency_p50_ms") for e in collect_entries(copy)}
    assert latencies[dropped] is None and all(v is not None for k, v in latencies.items() if k != dropped)


def test_measure_without_rows_says_what_to_do(tmp_path):
    done = CliRunner().invoke(cli, ["leaderboard", "measure", str(tmp_path)])
    assert done.exit_code != 0 and "no published rows" in done.output

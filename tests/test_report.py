"""`rag-bench report`: docs/RESULTS.md from full runs and sweeps, every figure read from its source."""

import json

from click.testing import CliRunner

from rag_bench.cli import cli
from rag_bench.study.report.render import verdict

from .helpers import run_quietly, write_slice_card


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)], catch_exceptions=False)


def test_report_tabulates_full_runs_and_sweeps_with_their_commands(nq_5k, tmp_path):
    card = write_slice_card(tmp_path / "task", nq_5k, "nq_slice_report")
    runs = tmp_path / "runs"
    bm25 = run_quietly(tmp_path, "bm25", task=card)
    run_quietly(tmp_path, "no_retrieval", task=card)
    run_quietly(tmp_path, "bm25", task=card, limit=5, provider_params={"k1": "1.2"})  # a slice: not a comparison row
    spec = tmp_path / "grid.yaml"
    spec.write_text(f"name: b-grid\nprovider: bm25\ntask: {card}\nlimit: 6\ngrid:\n  b: [0.4, 0.75]\nmetrics: [recall@1]\n")
    assert invoke("sweep", spec, "--runs-dir", runs, "--max-parallel", "2").exit_code == 0

    out = tmp_path / "docs" / "RESULTS.md"
    result = invoke("report", "--runs-dir", runs, "--out", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    recall = bm25.metrics["aggregate"]["recall@5"]
    row = next(line for line in text.splitlines() if line.startswith("| bm25 | none |"))
    assert f"{recall['value']:.3f} [{recall['ci95'][0]:.3f}, {recall['ci95'][1]:.3f}]" in row
    assert sum(line.startswith("| bm25 | none |") for line in text.splitlines()) == 1  # the --limit run is left out
    assert any(line.startswith("| no_retrieval | none |") for line in text.splitlines())
    assert "EM and F1 are not measured" in text  # reader none, said once, plainly
    # The sweep: its table, its command and its heat-map copied beside the report.
    assert "### b-grid: bm25 on nq_slice_report" in text and "Command: `rag-bench sweep" in text
    heat = tmp_path / "docs" / "results" / "sweeps" / "b-grid" / "heatmap-recall-at-1.png"
    assert heat.read_bytes().startswith(b"\x89PNG") and "](results/sweeps/b-grid/heatmap-recall-at-1.png)" in text
    summary = json.loads((runs / "sweeps" / "b-grid" / "summary.json").read_text())
    first = summary["cells"][0]["metrics"]["recall@1"]
    assert f"| 0.4 | done | {first['value']:.3f} [" in text
    assert "No full run of hotpotqa_5k" in text
    # without an llm_memory adapt curve its section is left out; writing is reported by the one write protocol
    assert "## Write path" not in text and "## New documents: the write protocol" in text


def test_report_with_nothing_to_report_is_one_clear_error(tmp_path):
    (tmp_path / "runs").mkdir()
    result = invoke("report", "--runs-dir", tmp_path / "runs", "--out", tmp_path / "RESULTS.md")
    assert result.exit_code == 1 and "nothing to report" in result.output
    assert not (tmp_path / "RESULTS.md").exists()


def test_a_target_is_met_only_when_the_whole_interval_clears_it():
    assert verdict({"value": 0.4, "ci95": [0.35, 0.45]}, 0.3) == "met"
    assert verdict({"value": 0.2, "ci95": [0.15, 0.25]}, 0.3) == "not met"
    assert verdict({"value": 0.32, "ci95": [0.28, 0.36]}, 0.3).startswith("inconclusive")
    assert verdict(None, 0.3) == "not measured"


def test_llm_memory_rows_show_each_control_and_the_paired_difference():
    from types import SimpleNamespace

    from rag_bench.study.report.render import controls

    agg = {"evidence_rougeL": {"value": 0.4, "ci95": [0.38, 0.42], "n": 10},
           "control.shuffled_z.evidence_rougeL": {"value": 0.1, "ci95": [0.08, 0.12], "n": 10},
           "delta.shuffled_z.evidence_rougeL": {"value": 0.3, "ci95": [0.27, 0.33], "n": 10},
           "control.question_echo.evidence_rougeL": {"value": 0.16, "ci95": [0.15, 0.17], "n": 12},
           "delta.question_echo.evidence_rougeL": {"value": 0.24, "ci95": [0.2, 0.28], "n": 12}}
    entry = SimpleNamespace(provider="llm_memory", task="nq_5k", reader="none", config_hash="abc", aggregate=agg,
                            manifest={"provider": {"settings": {"base": "minilm"}}})
    text = controls(entry, [entry])
    assert "| question_echo | 0.160 [0.150, 0.170] | 0.240 [0.200, 0.280] |" in text
    assert "| shuffled_z | 0.100 [0.080, 0.120] | 0.300 [0.270, 0.330] |" in text
    assert "question_echo 12, shuffled_z 10" in text
    old = SimpleNamespace(**{**vars(entry), "aggregate": {"evidence_rougeL": agg["evidence_rougeL"]}})
    assert "carries no controls" in controls(old, [old])


QIDS = [f"q{i}" for i in range(40)]


def answered(provider, reader, em, source, weights="w1"):
    """A result row whose reader (fingerprinted by `weights`) got the first `em` share of 40 questions right."""
    from rag_bench.leaderboard.collect import Entry

    scores = {"em": {q: float(i < em * len(QIDS)) for i, q in enumerate(QIDS)}} if em is not None else {}
    fingerprint = {"kind": reader, "model": "m", "endpoint": None, "weights_sha256": weights, "prompt_sha256": None,
                   "decoding": {}}
    return Entry(task="nq_5k", split="test", provider=provider, reader=reader, config_hash=provider + weights,
                 command=None, date="", status="complete", counts={}, manifest={"reader": {"fingerprint": fingerprint}},
                 aggregate={"em": {"value": em, "ci95": None, "n": len(QIDS)}} if em is not None else {},
                 scores=scores, source=source)


def test_phase_three_pairs_llm_memory_with_each_baseline_under_the_same_reader_only(tmp_path):
    from functools import partial

    from rag_bench.study.report.render import em_gap_rows

    entry = partial(answered, source=tmp_path)
    # llm_memory answers 40 points below dense and level with bm25, all under one reader
    rows = em_gap_rows("nq_5k", [entry("llm_memory", "extractive", 0.2), entry("dense", "extractive", 0.6),
                                 entry("bm25", "extractive", 0.2)])
    by_baseline = {("dense" if "minus dense" in r[2] else "bm25"): r for r in rows}
    assert by_baseline["dense"][3] == "not met" and "= -0.400 [" in by_baseline["dense"][2]
    assert by_baseline["bm25"][3] == "met" and "= +0.000 [+0.000, +0.000] (paired)" in by_baseline["bm25"][2]
    # a baseline read by another reader (other weights) is never paired with llm_memory
    rows = em_gap_rows("nq_5k", [entry("llm_memory", "extractive", 0.2), entry("dense", "extractive", 0.6, weights="w2")])
    assert all(r[3] == "not measured" for r in rows) and len(rows) == 2
    assert em_gap_rows("nq_5k", [entry("llm_memory", "none", None)])[0][3].startswith("needs a reader")


def test_answers_are_plotted_per_reader_never_two_readers_on_one_axis(tmp_path):
    from rag_bench.study.report.answers import answers_section

    rows = [answered("dense", "extractive", 0.4, tmp_path), answered("bm25", "extractive", 0.3, tmp_path),
            answered("dense", "extractive", 0.2, tmp_path, weights="w2"), answered("bm25", "none", None, tmp_path)]
    text = answers_section(rows, tmp_path / "figures", tmp_path / "RESULTS.md")
    assert text.count("### nq_5k, reader extractive") == 2  # the two reader weights: two tables, two plots
    assert len(list((tmp_path / "figures").glob("em-nq_5k-*.png"))) == 2
    assert "reader none" not in text
    assert "No row has an EM" in answers_section(rows[-1:], tmp_path / "figures", tmp_path / "RESULTS.md")

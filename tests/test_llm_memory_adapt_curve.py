"""`rag-bench memory adapt-curve` on a tiny base and a local task cut from nq_5k: step counts, columns, files,
reuse of the trained memory, exactness of scoring along one optimisation run, and bad --steps."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from click.testing import CliRunner

from rag_bench.cli import _load_plugin_commands, cli
from rag_bench.task_store import load_task

from rag_bench.params import parse_steps
from rag_bench_plugins.llm_memory.adapt_curve import csv_columns, metric_names
from rag_bench_plugins.llm_memory.evaluation import holdout_split
from rag_bench_plugins.llm_memory.system import MemorySystem
from rag_bench_plugins.llm_memory.write import add_passages, appended

from .helpers import write_slice_card

SETTINGS = dict(base="tiny", m_tokens=5, tiny_hidden=64, tiny_layers=2, tiny_heads=2, tiny_kv_heads=1, tiny_intermediate=128, z_dim=32,
                route_dim=32, batch_size=16, max_train_steps=20, warmup_steps=5, tokenizer_vocab=2000, pseudo_queries=3,
                max_query_tokens=24, max_evidence_tokens=24, max_new_tokens=8, threads=1, checkpoint_every=1000,
                tokenizer="corpus")
HOLDOUT = 6
LR = 5e-3


def invoke(*args):
    _load_plugin_commands()
    return CliRunner().invoke(cli, ["memory", "adapt-curve", *args])


def curve_args(card, runs, steps="20,0,5,5"):
    settings = [a for key, value in SETTINGS.items() for a in ("-P", f"{key}={value}")]
    return ["--task", card, "--holdout", str(HOLDOUT), *settings, "--steps", steps, "--lr", str(LR), "--runs-dir", str(runs)]


@pytest.fixture(scope="module")
def card(nq_5k, tmp_path_factory):
    """A local task: the gold passages of 40 train and 24 test questions of nq_5k, and those questions."""
    return write_slice_card(tmp_path_factory.mktemp("task") / "nq_mini_write", nq_5k, "nq_mini_write")


@pytest.fixture(scope="module")
def first_run(card, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = invoke(*curve_args(card, runs))
    assert result.exit_code == 0, result.output
    folders = list((runs / "adapt-curves").iterdir())
    assert len(folders) == 1
    return runs, folders[0], result.output


def test_default_folder_is_named_by_task_and_fingerprint(first_run):
    _, out, _ = first_run
    task, _, digest = out.name.partition("__")
    assert task == "nq_mini_write" and len(digest) == 12 and int(digest, 16) >= 0
    assert {p.name for p in out.iterdir()} >= {"memory", "curve.json", "curve.csv", "curve.png"}


def test_points_come_sorted_and_unique_with_every_column_in_range(first_run):
    _, out, output = first_run
    curve = json.loads((out / "curve.json").read_text())
    assert [p["steps"] for p in curve["points"]] == [0, 5, 20]
    assert curve["command"][:3] == ["rag-bench", "memory", "adapt-curve"] and "0,5,20" in curve["command"]
    assert curve["holdout_passages"] == HOLDOUT and curve["new_questions"] >= HOLDOUT and curve["old_questions"] > 0
    assert curve["settings"]["max_train_steps"] == 20 and curve["train_steps"] == 20 and curve["memory_reused"] is False
    assert 0.0 <= curve["old_recall@5_before_add"] <= 1.0
    for point in curve["points"]:
        for name in metric_names(5):
            lo, hi = point[f"{name}_ci95"]
            assert 0.0 <= lo <= point[name] <= hi <= 1.0, (name, point)
        assert math.isfinite(point["new_loss"])
    seconds = [p["seconds"] for p in curve["points"]]
    assert seconds[0] == 0.0 and seconds == sorted(seconds)
    # Adam on z_new lowers the write objective it minimises
    assert curve["points"][-1]["new_loss"] < curve["points"][0]["new_loss"]
    assert "new_recall@5" in output and len(output.strip().splitlines()) >= 4


def test_csv_has_one_row_per_point_and_the_documented_header(first_run):
    _, out, _ = first_run
    with (out / "curve.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == csv_columns(5) and [r[0] for r in rows[1:]] == ["0", "5", "20"]
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scoring_along_one_run_equals_fresh_runs_of_each_length(first_run, card):
    """The point at N steps is what a separate N-step `memory add` reaches: evaluating mid-run changes nothing."""
    _, out, _ = first_run
    curve = json.loads((out / "curve.json").read_text())
    task = load_task(card)
    split = holdout_split(task.corpus, task.split("test"), HOLDOUT, 200)
    for point in curve["points"][1:]:
        system = MemorySystem.load(out / "memory", task.passages_by_id)
        report = add_passages(system, split.held, steps=point["steps"], lr=LR, seed=system.params.seed)
        assert sum(report.loss_after) / HOLDOUT == pytest.approx(point["new_loss"], rel=1e-5)


def test_appended_restores_z_and_passages_even_on_error(first_run, card):
    _, out, _ = first_run
    task = load_task(card)
    system = MemorySystem.load(out / "memory", task.passages_by_id)
    z, passages = system.model.z.detach().clone(), list(system.passages)
    extra = torch.zeros(2, *z.shape[1:])
    with pytest.raises(RuntimeError), appended(system, task.corpus[:2], extra):
        assert system.model.z.shape[0] == len(passages) + 2 and len(system.doc_ids) == len(passages) + 2
        raise RuntimeError("inside")
    assert torch.equal(system.model.z, z) and system.passages == passages


def test_second_invocation_reuses_the_trained_memory(first_run, card):
    runs, out, _ = first_run
    weights = out / "memory" / "memory.safetensors"
    stamp = weights.stat().st_mtime_ns
    result = invoke(*curve_args(card, runs, steps="0,5,20"))
    assert result.exit_code == 0, result.output
    curve = json.loads((out / "curve.json").read_text())
    assert curve["memory_reused"] is True and curve["train_steps"] == 20
    assert weights.stat().st_mtime_ns == stamp


def test_a_memory_with_other_settings_is_refused_not_overwritten(first_run, card):
    runs, out, _ = first_run
    args = curve_args(card, runs) + ["-P", "route_weight=0.5", "--out", str(out)]
    result = invoke(*args)
    assert result.exit_code == 1 and "route_weight" in result.output, result.output


@pytest.mark.parametrize("steps", ["5,x", "0,-1", ",", "2.5"])
def test_bad_steps_give_one_line_error(steps, tmp_path):
    result = invoke("--task", "nq_5k", "--steps", steps, "--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "--steps" in result.output, result.output
    assert not (tmp_path / "adapt-curves").exists()


def test_parse_steps_sorts_and_dedupes():
    assert parse_steps("200, 0,10,10,25") == [0, 10, 25, 200]

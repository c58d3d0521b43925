"""The corpus-size axis (issue 29): the NQ family's rows as one line per provider variant against N, in the report,
on the board and in benchmarks/corpus_axis.sh."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from rag_bench.leaderboard.collect import FORMAT, collect_entries
from rag_bench.leaderboard.site import build_site
from rag_bench.study.report.corpus_axis import FAMILY, FIGURE, build_axis, corpus_axis_section, corpus_size

from .helpers import run_quietly

REPO = Path(__file__).resolve().parents[1]


def write_row(results: Path, task: str, n: int | None, provider: str, *, reader: str = "none", settings=None,
              recall: float = 0.5, footprint=None, limit=None, ended: str = "2026-12-01T00:00:00+00:00",
              extra=None) -> None:
    """A published result file (the format `leaderboard publish` writes) with the figures the axis reads."""
    settings = settings or {}
    config = hashlib.sha256(json.dumps([task, provider, reader, settings, limit], sort_keys=True).encode()).hexdigest()[:12]
    command = ["rag-bench", "run", "--provider", provider, "--task", task,
               *(arg for k, v in settings.items() for arg in ("-P", f"{k}={v}")), "--reader", reader]
    aggregate = {m: {"value": recall * f, "ci95": [recall * f - 0.05, recall * f + 0.05], "n": 50}
                 for m, f in (("recall@1", 0.8), ("recall@5", 1.0), ("evidence_rougeL", 0.6), ("answer_recall@5", 0.9))}
    aggregate.update(extra or {})
    measurements = {"latency_p50_ms": {"value": 2.0, "ci95": [1.9, 2.1], "n": 50},
                    "prepare_s": {"value": 3.0, "ci95": None, "n": 1}}
    task_info = {"name": task, "split": "test", "version": 1, "limit": limit, **({"passages": n} if n else {})}
    doc = {"format": FORMAT,
           "manifest": {"task": task_info, "provider": {"name": provider, "settings": settings},
                        "reader": {"name": reader}, "config_hash": config, "command": command, "status": "complete",
                        "ended": ended, "footprint_bytes": footprint or {}},
           "metrics": {"aggregate": aggregate, "measurements": measurements, "counts": {"questions": 50, "ok": 50},
                       "run": {"task": task, "split": "test", "provider": provider, "reader": reader,
                               "config_hash": config}},
           "per_question_scores": {"qids": [], "metrics": {}}}
    folder = results / task
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{task}__{provider}__test__{reader}__{config}.json").write_text(json.dumps(doc), encoding="utf-8")


def trained(steps: int, seconds: float) -> dict:
    return {"train_steps": {"value": float(steps), "ci95": None, "n": 1},
            "train_s": {"value": seconds, "ci95": None, "n": 1}}


@pytest.fixture()
def two_sizes(tmp_path) -> Path:
    """bm25, no_retrieval and llm_memory (budget 500) on nq_5k and nq_1k, written largest first, with rows that must
    stay off the axis: another reader's copy, a --limit slice, a task outside the family."""
    results = tmp_path / "results"
    budget = {"max_train_steps": 500, "base": "minilm"}
    for task, n, recall in (("nq_5k", 5000, 0.6), ("nq_1k", 1000, 0.8)):
        write_row(results, task, n, "bm25", settings={"k1": 0.9}, recall=recall,
                  footprint={"index": 400 * n, "text_store": 600 * n})
        write_row(results, task, n, "no_retrieval", recall=0.0)
        write_row(results, task, n, "llm_memory", settings=budget, recall=recall / 2,
                  footprint={"memory_table": 8000 * n, "lora": 1_000_000, "extra_base_model": 90_000_000},
                  extra=trained(500, 50.0 * n / 1000))
    write_row(results, "nq_1k", 1000, "bm25", reader="extractive", settings={"k1": 0.9}, recall=0.1,
              ended="2026-12-09T00:00:00+00:00")  # later, but the reader-none row is the one shown
    write_row(results, "nq_1k", 1000, "bm25", settings={"k1": 0.9}, recall=0.1, limit=10)
    write_row(results, "hotpotqa_5k", 5000, "bm25", settings={"k1": 0.9})
    return results


def test_the_family_is_the_builders_members_and_nq_5k():
    from rag_bench_plugins.builtin_tasks.nq_family import MEMBERS

    assert set(FAMILY) == {"nq_5k", *MEMBERS}


def test_each_variant_is_one_line_with_its_points_sorted_by_n(two_sizes):
    axis = build_axis(collect_entries(two_sizes))
    assert axis.sizes == [1000, 5000] and axis.tasks == ["nq_1k", "nq_5k"]
    lines = {line.label: line for line in axis.lines}
    assert sorted(lines) == ["bm25", "llm_memory", "no_retrieval"]
    for line in axis.lines:
        assert [p.n for p in line.points] == [1000, 5000]
        assert [p.entry.task for p in line.points] == ["nq_1k", "nq_5k"]
    bm25 = lines["bm25"].points
    assert [p.entry.reader for p in bm25] == ["none", "none"]
    assert [p.values["recall@5"]["value"] for p in bm25] == [0.8, 0.6]
    assert bm25[0].values["recall@1"]["value"] == pytest.approx(0.64)
    assert [p.values["bytes_per_passage"]["value"] for p in bm25] == [1000, 1000]
    memory = lines["llm_memory"].points
    # The counted footprint: Z per passage plus the shared LoRA spread over N; the base model (extra_*) not counted.
    assert [p.values["bytes_per_passage"]["value"] for p in memory] == [9000, 8200]
    assert [p.budget for p in memory] == [500, 500]
    assert lines["no_retrieval"].points[0].values["bytes_per_passage"] is None
    assert [p.values["latency_p50_ms"]["value"] for p in bm25] == [2.0, 2.0]
    left = " ".join(axis.left_out)
    assert "extractive" in left and "--limit slice" in left and "hotpotqa" not in left


def test_variants_differ_by_settings_and_a_setting_added_later_does_not_split_a_line(tmp_path):
    results = tmp_path / "results"
    write_row(results, "nq_5k", 5000, "llm_memory", settings={"max_train_steps": 1500}, extra=trained(1500, 900.0))
    write_row(results, "nq_5k", 5000, "llm_memory", settings={"max_train_steps": 500, "early_stop_patience": 0},
              extra=trained(500, 300.0))
    write_row(results, "nq_1k", 1000, "llm_memory", settings={"max_train_steps": 500, "early_stop_patience": 0},
              extra=trained(420, 60.0))
    write_row(results, "nq_2k5", 2500, "llm_memory", settings={"max_train_steps": 500}, extra=trained(500, 150.0))
    axis = build_axis(collect_entries(results))
    lines = {line.label: [p.n for p in line.points] for line in axis.lines}
    assert lines == {"llm_memory max_train_steps=500": [1000, 2500, 5000], "llm_memory max_train_steps=1500": [5000]}
    section = corpus_axis_section(collect_entries(results), tmp_path / "docs" / "results", tmp_path / "docs" / "R.md")
    assert "N = 1,000 (nq_1k): max_train_steps=500; trained 420 steps in 60.0 s" in section
    assert "N = 5,000 (nq_5k): max_train_steps=1500; trained 1,500 steps in 900 s" in section
    assert "Measured at one size only (a point, not a line): llm_memory max_train_steps=1500" in section


def test_the_section_embeds_the_figure_the_table_and_the_commands(two_sizes, tmp_path):
    out_md = tmp_path / "docs" / "RESULTS.md"
    section = corpus_axis_section(collect_entries(two_sizes), out_md.parent / "results", out_md)
    assert section.startswith("## Corpus-size axis")
    figure = out_md.parent / "results" / FIGURE
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"](results/{FIGURE})" in section
    assert "2 corpus sizes: N = 1,000, 5,000 (nq_1k, nq_5k)." in section and "Fewer than two" not in section
    table = [line for line in section.splitlines() if line.startswith("| bm25 |")]
    assert [line.split(" | ")[1:3] for line in table] == [["1,000", "nq_1k"], ["5,000", "nq_5k"]]
    assert "0.800 [0.750, 0.850]" in table[0]  # recall@5 with its interval
    assert "`rag-bench run --provider bm25 --task nq_1k -P k1=0.9 --reader none`" in section
    assert "benchmarks/corpus_axis.sh" in section
    assert "N = 1,000 (nq_1k): max_train_steps=500; trained 500 steps in 50.0 s" in section


def test_one_size_is_said_plainly_and_no_rows_draws_nothing(tmp_path):
    results = tmp_path / "results"
    write_row(results, "nq_5k", 5000, "bm25")
    write_row(results, "nq_5k", 5000, "dense")
    section = corpus_axis_section(collect_entries(results), tmp_path / "results-fig", tmp_path / "RESULTS.md")
    assert "Fewer than two corpus sizes exist (only N = 5,000, nq_5k)" in section
    assert (tmp_path / "results-fig" / FIGURE).is_file()
    other = tmp_path / "other"
    write_row(other, "hotpotqa_5k", 5000, "bm25")
    section = corpus_axis_section(collect_entries(other), tmp_path / "none-fig", tmp_path / "RESULTS.md")
    assert "Fewer than two corpus sizes exist (no NQ-family row at all)" in section
    assert not (tmp_path / "none-fig" / FIGURE).exists()


def test_n_comes_from_the_task_card_when_the_row_did_not_record_it(tmp_path):
    results = tmp_path / "results"
    write_row(results, "nq_2k5", None, "bm25")
    (entry,) = collect_entries(results)
    assert corpus_size(entry) == 2500
    assert build_axis([entry]).sizes == [2500]


def test_the_board_shows_the_axis_under_each_family_task_with_the_budget(two_sizes, tmp_path):
    site = build_site(collect_entries(two_sizes), tmp_path / "site")
    assert (site.root / "plots" / FIGURE) in site.plots
    index = site.index.read_text(encoding="utf-8")
    sections = index.split('<section class="task"')[1:]
    with_axis = sorted(s.split('data-task="')[1].split('"')[0] for s in sections if f"plots/{FIGURE}" in s)
    assert with_axis == ["nq_1k", "nq_5k"]
    assert "llm_memory: N=1,000 max_train_steps=500, N=5,000 max_train_steps=500" in index
    assert not any(p.name == FIGURE for p in build_site(collect_entries(two_sizes), tmp_path / "bare", plots=False).plots)


def test_the_script_lists_every_run_and_publish_command():
    env = {**os.environ, "DRY_RUN": "1", "RUNS": "RUNS"}
    out = subprocess.run(["bash", str(REPO / "benchmarks" / "corpus_axis.sh")], env=env, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    runs = [line for line in out if line.startswith("rag-bench run ")]
    baselines = [line for line in runs if "llm_memory" not in line]
    assert len(baselines) == 16 and all(line.endswith("--reader none --runs-dir RUNS") for line in runs)
    for task in ("nq_1k", "nq_2k5", "nq_10k", "nq_17k"):
        for provider in ("no_retrieval", "bm25", "dense", "hybrid"):
            assert sum(f"--provider {provider} --task {task} " in line for line in baselines) == 1
    memory = [line for line in runs if "--provider llm_memory" in line]
    assert [line.split("--task ")[1].split()[0] for line in memory] == list(FAMILY)
    assert all("-P max_train_steps=500 -P closed_book_control=false" in line for line in memory)
    publish = [line for line in out if line.startswith("rag-bench leaderboard publish --from-runs RUNS ")]
    assert len(publish) == 4 * 5 + 1  # every new row; nq_5k's baselines are published already
    assert out[-2:] == ["rag-bench report leaderboard/results --runs-dir leaderboard/results --out docs/RESULTS.md",
                        "rag-bench leaderboard build leaderboard/results --out site"]


def test_real_runs_on_two_family_members_make_two_points(shared_data, tmp_path):
    for task in ("nq_1k", "nq_2k5"):
        run_quietly(tmp_path, "no_retrieval", task=task, reader="none")
    axis = build_axis(collect_entries(tmp_path / "runs"))
    (line,) = axis.lines
    assert line.provider == "no_retrieval" and [p.n for p in line.points] == [1000, 2500]
    assert [p.entry.counts["questions"] for p in line.points] == [99, 272]

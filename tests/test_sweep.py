"""`rag-bench sweep`: a grid of ordinary runs that resumes, reports failed cells and goes on."""

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag_bench.cli import cli

from .helpers import write_slice_card
from .plugin_dist import build_and_install, env_with, rag_bench

PNG = b"\x89PNG\r\n\x1a\n"

BM25_2X2 = """
name: bm25-grid
provider: bm25
task: {task}
limit: 8
k: [1, 5]
grid:
  k1: [0.9, 1.2]
  b: [0.4, 0.75]
metrics: [recall@1, recall@5]
"""


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def sweep(args, runs):
    return CliRunner().invoke(cli, ["sweep", *map(str, args), "--runs-dir", str(runs)], catch_exceptions=False)


@pytest.fixture(scope="module")
def slice_card(nq_5k, tmp_path_factory):
    return write_slice_card(tmp_path_factory.mktemp("task") / "slice", nq_5k, "nq_slice_sweep")


def test_2x2_sweep_runs_every_cell_as_an_ordinary_run_and_resumes(slice_card, tmp_path):
    spec, runs = write(tmp_path / "grid.yaml", BM25_2X2.format(task=slice_card)), tmp_path / "runs"
    first = sweep([spec, "--max-parallel", "2"], runs)
    assert first.exit_code == 0, first.output
    assert "4 run now, 0 finished before, 0 failed" in first.output
    out = runs / "sweeps" / "bm25-grid"
    summary = json.loads((out / "summary.json").read_text())
    assert [c["name"] for c in summary["cells"]] == ["k1=0.9,b=0.4", "k1=0.9,b=0.75", "k1=1.2,b=0.4", "k1=1.2,b=0.75"]
    assert {c["status"] for c in summary["cells"]} == {"done"}

    # Each cell is the run `rag-bench run` makes for the same settings: same folder, same figures.
    cell = summary["cells"][2]
    direct = CliRunner().invoke(cli, ["run", "--provider", "bm25", "--task", slice_card, "--limit", "8", "-k", "1,5", "--reader", "none",
                                      "-P", "k1=1.2", "-P", "b=0.4", "--runs-dir", str(runs)], catch_exceptions=False)
    assert direct.exit_code == 0 and "0 computed now" in direct.output and cell["run"] in direct.output
    metrics = json.loads((Path(cell["run"]) / "metrics.json").read_text())
    assert cell["metrics"]["recall@5"] == metrics["aggregate"]["recall@5"]

    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4 and float(rows[2]["recall@5"]) == metrics["aggregate"]["recall@5"]["value"]
    for metric in ("recall-at-1", "recall-at-5"):
        assert (out / f"heatmap-{metric}.png").read_bytes().startswith(PNG)
    assert summary["command"][:2] == ["rag-bench", "sweep"]

    # A cell whose run was interrupted (records kept, no metrics.json) is the only one run again, and resumes.
    (Path(summary["cells"][1]["run"]) / "metrics.json").unlink()
    second = sweep([spec], runs)
    assert second.exit_code == 0, second.output
    assert "1 run now, 3 finished before, 0 failed" in second.output
    again = json.loads((out / "summary.json").read_text())
    assert [c["status"] for c in again["cells"]] == ["done"] * 4
    assert [c["ran_now"] for c in again["cells"]] == [False, True, False, False]
    assert [c["metrics"] for c in again["cells"]] == [c["metrics"] for c in summary["cells"]]
    log = (out / "logs" / "k1=0.9__b=0.75.log").read_text()
    assert "0 computed now" in log  # resumed from its records rather than recomputed


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    return env_with(build_and_install(tmp_path_factory.mktemp("plugin")))


def test_a_failing_cell_is_reported_and_the_others_still_run(slice_card, tmp_path, plugin_env):
    spec = write(tmp_path / "fails.yaml", f"""
provider: throwaway_overlap
task: {slice_card}
limit: 4
grid:
  fail: [false, true]
  delay: [0, 0.001]
metrics: [recall@5]
""")
    runs = tmp_path / "runs"
    out = rag_bench(["sweep", str(spec), "--runs-dir", str(runs)], plugin_env)
    assert out.returncode == 1
    assert "Error: 2 cell(s) failed: fail=true,delay=0, fail=true,delay=0.001" in out.stderr
    assert "RuntimeError: asked to fail" in out.stderr  # the child's own error, one line per cell
    summary = json.loads((runs / "sweeps" / "fails" / "summary.json").read_text())
    status = {c["name"]: c["status"] for c in summary["cells"]}
    assert status == {"fail=false,delay=0": "done", "fail=false,delay=0.001": "done",
                      "fail=true,delay=0": "failed", "fail=true,delay=0.001": "failed"}
    failed = [c for c in summary["cells"] if c["status"] == "failed"]
    assert all(c["metrics"] == {} and "asked to fail" in c["error"] for c in failed)
    # The failed cell's run folder says so; no metrics.json pretends it finished.
    manifest = json.loads((Path(failed[0]["run"]) / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert (runs / "sweeps" / "fails" / "heatmap-recall-at-5.png").read_bytes().startswith(PNG)


def test_a_setting_value_one_cell_rejects_fails_that_cell_only(slice_card, tmp_path):
    spec = write(tmp_path / "bad-b.yaml", f"provider: bm25\ntask: {slice_card}\nlimit: 4\ngrid:\n  b: [0.4, 2.0]\nmetrics: [recall@5]\n")
    result = sweep([spec], tmp_path / "runs")
    assert result.exit_code == 1
    summary = json.loads((tmp_path / "runs" / "sweeps" / "bad-b" / "summary.json").read_text())
    assert [c["status"] for c in summary["cells"]] == ["done", "failed"]
    assert "b within [0, 1]" in summary["cells"][1]["error"]


@pytest.mark.parametrize("text, message", [
    ("provider: bm25\ntask: nq_5k\ngird: {b: [0.4]}\n", "unknown key 'gird'. Did you mean: grid?"),
    ("provider: bm25\ntask: nq_5k\n", "missing grid"),
    ("provider: bm25\ntask: nq_5k\nparams: {b: 0.4}\ngrid: {b: [0.4, 0.5]}\n", "b is both fixed (params) and varied (grid)"),
    ("provider: bm25\ntask: nq_5k\ngrid: {k_1: [0.9]}\n", "provider bm25 has no setting 'k_1'. Did you mean: k1?"),
    ("provider: bm25\ntask: nq_5k\ngrid: {b: []}\n", "grid.b must be a non-empty list"),
    ("provider: bm25\ntask: nq_5k\ngrid: [b]\n", "grid must map each setting"),
    ("provider: [bm25\n", "not valid YAML"),
    ("provider: bm25\ntask: nq_5k\ngrid: {b: [0.4]}\nresources: {gpu: 1}\n", "unknown key 'gpu'. Did you mean: gpus?"),
    ("provider: bm25\ntask: nq_5k\ngrid: {b: [0.4]}\nresources: {mem: lots}\n", "expected a size such as 64G"),
    ("provider: bm25\ntask: nq_5k\ngrid: {b: [0.4]}\nresources: {time: 4h}\n", "a Slurm time such as 4:00:00"),
    ("provider: bm25\ntask: nq_5k\ngrid: {b: [0.4]}\nslurm: {partiton: gpu}\n", "Did you mean: partition?"),
])
def test_a_bad_sweep_file_is_one_clear_error_before_any_run(tmp_path, text, message):
    runs = tmp_path / "runs"
    result = sweep([write(tmp_path / "s.yaml", text)], runs)
    assert result.exit_code == 1
    assert message in result.output and result.output.count("Error:") == 1
    assert not (runs / "nq_5k").exists()


def test_sweeps_choose_on_dev_unless_told_otherwise():
    from rag_bench.sweep.spec import parse_spec, with_split

    spec = parse_spec({"provider": "bm25", "task": "nq_5k", "grid": {"k1": [0.9]}}, "inline", "s")
    assert with_split(spec, ("train", "dev", "test"), "test").split == "dev"
    assert with_split(spec, ("test",), "test").split == "test"
    told = parse_spec({"provider": "bm25", "task": "nq_5k", "split": "test", "reader_k": 3, "grid": {"k1": [0.9]}}, "inline", "s")
    assert with_split(told, ("train", "dev", "test"), "test").split == "test" and told.reader_k == 3


def test_every_sweep_file_in_benchmarks_loads_and_names_real_settings():
    from rag_bench.sweep.execute import check_spec
    from rag_bench.sweep.spec import load_spec

    specs = {path.name: load_spec(path) for path in sorted(Path("benchmarks/sweeps").glob("*.yaml"))}
    for spec in specs.values():
        check_spec(spec)
    research = specs["llm_memory_research_8b.yaml"]
    assert research.params["base"] == "Qwen/Qwen3-8B" and research.params["quantization"] == "4bit"
    assert research.resources.gpus == 1 and research.resources.time_min == 12 * 60
    assert specs["phase2_z_dim.yaml"].resources.gpus is None  # a file without resources: runs where it is started


def test_an_executor_whose_engine_is_missing_or_unknown_is_one_clear_error(monkeypatch, tmp_path):
    import sys

    from rag_bench.errors import RagBenchError
    from rag_bench.sweep.factory import make_executor

    for name, module in (("slurm", "submitit"), ("ray", "ray")):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
        with pytest.raises(RagBenchError, match=rf"--executor {name} needs the Python package '{module}'.*"
                                                r"pip install 'rag-bench\[cluster\]'"):
            make_executor(name, folder=tmp_path)
    with pytest.raises(RagBenchError, match="unknown executor 'dask': choose one of local, slurm, ray"):
        make_executor("dask")


@pytest.mark.parametrize("args, message", [
    (["--executor", "local", "--no-wait"], "--no-wait applies to --executor slurm only"),
    (["--executor", "local", "--mem", "lots"], "--mem: expected a size such as 64G"),
    (["--executor", "local", "--slurm-option", "exclude"], "--slurm-option expects KEY=VALUE"),
])
def test_bad_executor_options_are_one_clear_error(slice_card, tmp_path, args, message):
    spec = write(tmp_path / "s.yaml", f"provider: bm25\ntask: {slice_card}\nlimit: 4\ngrid:\n  b: [0.4]\n")
    result = sweep([spec, *args], tmp_path / "runs")
    assert result.exit_code == 1 and message in result.output and result.output.count("Error:") == 1


def test_a_remote_executor_plans_on_the_node_a_cell_this_machine_cannot(slice_card, tmp_path, monkeypatch):
    """4-bit on a login node without CUDA: the settings parse, the run cannot be planned here, the node plans it."""
    import os

    from rag_bench.errors import RagBenchError
    from rag_bench.sweep import execute
    from rag_bench.sweep.executors import run_remote_cell
    from rag_bench.sweep.spec import parse_spec

    class OnTheNode:  # an executor whose "node" is this process, with the node's own planning
        name, remote, max_parallel = "node", True, None

        def run(self, jobs, report):
            for job in jobs:
                report(job, run_remote_cell(job, dict(os.environ), "on the node"))

    def no_gpu_here(config):
        raise RagBenchError("needs CUDA")

    spec = parse_spec({"provider": "bm25", "task": slice_card, "limit": 4, "grid": {"b": [0.4, 2.0]}}, "inline", "s")
    runs = tmp_path / "runs"
    monkeypatch.setattr(execute, "plan_run", no_gpu_here)
    outcomes = execute.run_sweep(spec, tmp_path / "out", runs, executor=OnTheNode(), progress=False)
    assert [o.status for o in outcomes] == ["done", "failed"]  # b=2.0 is a bad setting on any machine: not sent
    assert "b within [0, 1]" in outcomes[1].error and outcomes[1].log is None
    assert (outcomes[0].run_path / "metrics.json").is_file()
    again = execute.run_sweep(spec, tmp_path / "out", runs, executor=OnTheNode(), progress=False)
    assert again[0].status == "cached" and again[0].run_path == outcomes[0].run_path  # found finished on the node

"""The main job through the CLI: what it prints, how it resumes, --overwrite."""

import json

from click.testing import CliRunner

from rag_bench.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_bm25_run_prints_the_promised_metrics_and_resumes(nq_5k, tmp_path):
    args = ["run", "--provider", "bm25", "--task", "nq_5k", "--runs-dir", str(tmp_path)]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    for name in ("recall@1", "recall@5", "recall@20", "answer_recall@5", "mrr@20", "ndcg@10",
                 "evidence_rougeL", "latency_p50_ms", "latency_p95_ms", "footprint_mb_per_1k", "peak_rss_mb"):
        assert f"\n{name} " in first.output, name
    assert "532 questions, 0 failed; 532 computed now" in first.output
    (run_dir,) = (tmp_path / "nq_5k").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # the closed corpus holds every gold passage: BM25 finds most of them
    assert metrics["aggregate"]["recall@20"]["value"] > 0.8

    again = invoke(*args)
    assert "0 computed now" in again.output
    rerun = json.loads((run_dir / "metrics.json").read_text())
    assert rerun["per_question"] == metrics["per_question"]
    assert rerun["aggregate"]["recall@5"] == metrics["aggregate"]["recall@5"]

    fresh = invoke(*args, "--overwrite")
    assert "532 computed now" in fresh.output


def test_manifest_records_versions_data_and_settings(nq_5k, tmp_path):
    result = invoke("run", "-p", "bm25", "-t", "nq_5k", "--limit", "5", "-k", "1,3", "-P", "k1=1.2", "--runs-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "nq_5k").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["provider"]["settings"]["k1"] == 1.2
    assert manifest["task"]["version"] == 1 and manifest["task"]["files_sha256"] == nq_5k.files_sha256
    assert manifest["ks"] == [1, 3] and manifest["seed"] == 0
    assert manifest["software"]["plugins"]["bm25"]["distribution"] == "rag-bench"
    assert manifest["reader"] == {"name": "none", "settings": {}, "plugin": "no_reader", "runtime_settings": [],
                                  "fingerprint": {"kind": "none", "model": None, "endpoint": None, "weights_sha256": None,
                                                  "prompt_sha256": None, "decoding": {}}}
    assert manifest["reader_k"] == 3  # --reader-k 5 capped at the largest -k
    assert manifest["command"][:2] == ["rag-bench", *manifest["command"][1:2]]
    assert manifest["sessions"][0]["ended"] >= manifest["sessions"][0]["started"]
    assert "bm25__test__none__" in run_dir.name


def test_no_retrieval_runs_and_scores_zero_retrieval(nq_5k, tmp_path):
    result = invoke("run", "-p", "no_retrieval", "-t", "nq_5k", "--runs-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "nq_5k").iterdir()
    aggregate = json.loads((run_dir / "metrics.json").read_text())["aggregate"]
    assert aggregate["recall@20"]["value"] == 0.0 and aggregate["answer_recall@20"]["value"] == 0.0


def test_tasks_and_plugins_commands():
    tasks = invoke("tasks")
    assert "nq_5k" in tasks.output and "train,dev,test" in tasks.output
    plugins = invoke("plugins")
    assert "provider:no_retrieval" in plugins.output and "reader:none" in plugins.output


def test_prepare_builds_task_and_provider_state(nq_5k, tmp_path):
    result = invoke("prepare", "--task", "nq_5k", "--provider", "bm25", "-P", "k1=1.1")
    assert result.exit_code == 0, result.output
    assert "5000 passages" in result.output and "bm25: state built" in result.output
    again = invoke("prepare", "--task", "nq_5k", "--provider", "bm25", "-P", "k1=1.1")
    assert "bm25: state reused" in again.output

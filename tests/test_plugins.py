"""The plugin path a user takes: install a distribution with an entry point, then use it."""

import json

import pytest

from .plugin_dist import build_and_install, env_with, rag_bench


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory):
    site = build_and_install(tmp_path_factory.mktemp("throwaway-plugin"))
    return env_with(site)


def test_plugins_lists_builtins_third_party_and_broken(plugin_env):
    out = rag_bench(["plugins"], plugin_env)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[2:] if line.strip()}
    assert "provider:bm25" in lines["bm25"] and "rag-bench" in lines["bm25"]
    assert "rag-bench-throwaway 0.1.0" in lines["throwaway"]
    assert "register_providers" in lines["throwaway"] and "provider:throwaway_overlap" in lines["throwaway"]
    assert "BROKEN" in lines["throwaway_broken"] and "a_dependency_that_is_not_installed" in lines["throwaway_broken"]
    # Every provider with the description its class gives, beside the plugin table.
    described = {tuple(line.split()[:3]): line for line in out.stdout.splitlines() if line.startswith("provider ")}
    assert "ranks passages by shared words with the question" in described[("provider", "throwaway_overlap", "throwaway")]
    assert "BM25" in described[("provider", "bm25", "bm25")]


def test_a_provider_from_an_installed_but_broken_plugin_names_the_failure(plugin_env):
    out = rag_bench(["run", "--provider", "throwaway_broken", "--task", "nq_5k", "--limit", "1"], plugin_env)
    assert out.returncode == 1
    (error,) = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert "provider 'throwaway_broken' is not available" in error
    assert "rag-bench-throwaway 0.1.0" in error and "No module named 'a_dependency_that_is_not_installed'" in error
    assert "needs that package installed" not in error
    # Any other unknown name still mentions the broken plugin, which may be the one that registers it.
    other = rag_bench(["run", "--provider", "from_somewhere", "--task", "nq_5k"], plugin_env)
    assert other.returncode == 1 and "Installed but broken, so not registered: plugin 'throwaway_broken'" in other.stderr


def test_third_party_provider_runs_through_rag_bench_run(plugin_env, nq_5k, tmp_path):
    runs = tmp_path / "runs"
    out = rag_bench(["run", "--provider", "throwaway_overlap", "--task", "nq_5k", "--limit", "20", "--runs-dir", str(runs)], plugin_env)
    assert out.returncode == 0, out.stderr
    assert "recall@5" in out.stdout
    # the broken plugin is reported, and did not stop the run
    assert "throwaway_broken" in out.stderr and "other plugins still work" in out.stderr
    (run_dir,) = (runs / "nq_5k").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["provider"]["plugin"] == "throwaway"
    assert manifest["software"]["plugins"]["throwaway"]["distribution"] == "rag-bench-throwaway"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["counts"] == {"questions": 20, "ok": 20, "failed": 0}
    assert metrics["aggregate"]["recall@20"]["value"] > 0

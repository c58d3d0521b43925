"""A run's status is true whatever breaks after the question loop: failed, with its error, provider and reader closed."""

from __future__ import annotations

import json

import pytest

from rag_bench.registry import registry
from rag_bench.runner import RunConfig, execute


def _config(tmp_path):
    return RunConfig(provider="bm25", task="nq_5k", limit=3, ks=(1, 3), reader="none", runs_dir=tmp_path)


def _break(stage, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError(f"broken {stage}")

    target = {"footprint": (registry().providers.get("bm25"), "footprint"),
              "metrics": ("rag_bench.evaluate.compute_metrics", None),
              "judges": ("rag_bench.evaluate.judge_all", None),
              "write": ("rag_bench.run_dir.RunDir.write_metrics", None)}[stage]
    if target[1] is None:
        monkeypatch.setattr(target[0], boom)
    else:
        monkeypatch.setattr(*target, boom)


@pytest.mark.parametrize("stage", ["footprint", "metrics", "judges", "write"])
def test_a_stage_after_the_question_loop_that_breaks_marks_the_run_failed(stage, nq_5k, tmp_path, monkeypatch):
    closed = []
    for kind, name in ((registry().providers, "bm25"), (registry().readers, "none")):
        cls = kind.get(name)
        original = cls.close
        monkeypatch.setattr(cls, "close", lambda self, _o=original, _n=name: (closed.append(_n), _o(self))[1])
    with monkeypatch.context() as patch:
        _break(stage, patch)
        with pytest.raises(RuntimeError, match=f"broken {stage}"):
            execute(_config(tmp_path))
    (run,) = [p.parent for p in tmp_path.rglob("manifest.json")]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"] == f"RuntimeError: broken {stage}"
    assert manifest["sessions"][-1]["ended"]
    assert sorted(closed) == ["bm25", "none"]
    assert not (run / "metrics.json").exists()

    resumed = execute(_config(tmp_path))  # the same command resumes: the records are kept, nothing is recomputed
    assert resumed.path == run and resumed.computed == 0
    assert resumed.manifest["status"] == "complete" and "error" not in resumed.manifest
    assert resumed.metrics["aggregate"]["recall@1"]["n"] == 3

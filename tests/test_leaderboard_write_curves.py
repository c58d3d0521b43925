"""The board shows the committed write and forgetting curves (`rag-bench write-curve` results) under their task."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from rag_bench.cli import cli

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "leaderboard" / "results"
CURVES = REPO / "docs" / "benchmarks" / "write_curves"


def _one_row(tmp_path: Path) -> Path:
    """A results folder with one published nq_5k row (the board needs a row of the task to show its curves under)."""
    source = next(p for p in sorted((RESULTS / "nq_5k").glob("*.json")) if "__bm25__" in p.name)
    folder = tmp_path / "results" / "nq_5k"
    folder.mkdir(parents=True)
    shutil.copy(source, folder / source.name)
    return tmp_path / "results"


def test_the_board_plots_each_tasks_write_and_forgetting_curves(tmp_path):
    curves = tmp_path / "curves"
    curves.mkdir()
    writable = [p for p in sorted(CURVES.glob("nq_5k__*.json")) if json.loads(p.read_text()).get("can_write")]
    assert writable, "no committed write-curve result to build from"
    shutil.copy(writable[0], curves / writable[0].name)
    site = tmp_path / "site"
    result = CliRunner().invoke(cli, ["leaderboard", "build", str(_one_row(tmp_path)), "--out", str(site),
                                      "--write-curves", str(curves)])
    assert result.exit_code == 0, result.output
    index = (site / "index.html").read_text(encoding="utf-8")
    for name in ("write-nq_5k.png", "forgetting-nq_5k.png"):
        assert (site / "plots" / name).stat().st_size > 0
        assert f"plots/{name}" in index
    assert "forgetting curve" in index and " ".join(json.loads(writable[0].read_text())["command"]) in index


def test_a_missing_write_curves_folder_is_one_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["leaderboard", "build", str(_one_row(tmp_path)), "--out", str(tmp_path / "site"),
                                      "--write-curves", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "--write-curves" in result.output and "no such folder" in result.output

"""Where the unscored count of a judge metric is shown: the terminal table, the failure lines, the leaderboard."""

from __future__ import annotations

from pathlib import Path

from rag_bench.diagnostics import failure_lines
from rag_bench.leaderboard.index_page import judged_note
from rag_bench.summary import metrics_table

METRICS = {
    "aggregate": {"em": {"value": 0.5, "ci95": [0.0, 1.0], "n": 4},
                  "ragchecker_f1": {"value": 1.0, "ci95": None, "n": 1, "unscored": 3}},
    "failures": {"timeout": 2},
    "judges": {"ragchecker": {"questions": 4, "scored": 1, "unscored": 3,
                              "unscored_by_kind": {"HTTP 500": 1, "no claims": 2}}},
}


def test_the_terminal_table_has_the_unscored_count_beside_n():
    lines = metrics_table(METRICS).splitlines()
    assert lines[0].split() == ["metric", "value", "95%", "CI", "n", "unscored"]
    assert lines[2].split()[-1] == "4" and lines[3].split()[-2:] == ["1", "3"]


def test_one_terminal_line_per_failure_kind_with_its_count():
    assert failure_lines(METRICS, Path("run/errors.log")) == [
        "reader: 2 questions failed: timeout (details: run/errors.log)",
        "ragchecker: 1 question unscored: HTTP 500 (details: run/errors.log)",
        "ragchecker: 2 questions unscored: no claims (details: run/errors.log)",
    ]


def test_the_leaderboard_shows_n_and_unscored_for_judge_metrics_only():
    assert judged_note(METRICS["aggregate"]["ragchecker_f1"]) == ' <span class="judged">n=1, 3 unscored</span>'
    assert judged_note(METRICS["aggregate"]["em"]) == ""

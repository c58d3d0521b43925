"""One row minus another, question by question: the paired-bootstrap difference as RESULTS.md prints it."""

from __future__ import annotations

from ...leaderboard.collect import Entry
from ...leaderboard.significance import paired_bootstrap


def paired_difference(focus: Entry, other: Entry, metric: str) -> str:
    """`focus` minus `other` on `metric` over their shared questions: ``+0.012 [-0.004, +0.028] (n.s.)``, or ``-``."""
    result = paired_bootstrap(focus.scores.get(metric, {}), other.scores.get(metric, {}))
    if result is None:
        return "-"
    return f"{result.mean_diff:+.3f} [{result.ci95[0]:+.3f}, {result.ci95[1]:+.3f}]" + ("" if result.significant else " (n.s.)")

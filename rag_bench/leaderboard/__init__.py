"""The static leaderboard: collect finished runs (or published results), test differences,
draw plots, render HTML pages, publish aggregated results and verify them by re-running.

``rag-bench leaderboard build RUNS_DIR --out SITE_DIR`` is the entry point; see docs/LEADERBOARD.md.
"""

from .collect import Entry, collect_entries

__all__ = ["Entry", "collect_entries"]

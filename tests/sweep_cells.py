"""What the cluster-executor tests share: a two-cell sweep whose second cell is slow enough to be killed mid-run,
and a poll for a condition with a deadline."""

from __future__ import annotations

import time

#: A sweep over the throwaway plugin's provider on a slice task (`{task}`): `delay=0.5` is the slow cell.
SPEC = """
name: slow-overlap
provider: throwaway_overlap
task: {task}
split: test
limit: 16
batch_size: 2
k: [1, 5]
grid:
  delay: [0, 0.5]
metrics: [recall@1, recall@5]
"""


def wait_for(predicate, seconds: float, step: float = 0.2):
    """`predicate()`'s first truthy value within `seconds`, asked every `step` seconds; None when time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None

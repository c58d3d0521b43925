"""`benchmarks/reader.py` at a tiny size: it runs end to end and times the whole question loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reader.py"


def test_reader_benchmark_reports_question_loops_no_faster_than_the_ideal(nq_5k):
    env = {**os.environ, "OPENAI_API_KEY": "test-key", "OMP_NUM_THREADS": "1"}
    env.pop("OPENAI_BASE_URL", None)
    done = subprocess.run([sys.executable, str(SCRIPT), "--questions", "8", "--latency", "0.05", "--concurrency", "2",
                           "--batch-size", "4", "--repeats", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["concurrency"] == 2 and row["ideal_s"] == 8 * 0.05 / 2
    # Eight 50 ms calls two at a time cannot take less than 0.2 s; a timer that missed part of the loop could
    for mode in ("reader", "serial", "overlap"):
        assert row[f"{mode}_s"] >= 0.95 * row["ideal_s"]
    assert row["outside_loop_s"] > 0
    assert "concurrency 2: question loop within 1.1x of ideal" in done.stdout

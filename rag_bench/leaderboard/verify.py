"""`rag-bench leaderboard verify`: re-run each row's command and compare with its published figures.

In the spirit of pyserini's two-click reproductions: the command recorded in
the row's manifest runs again in a temporary runs directory, and every
machine-independent aggregate must come back within a tolerance. Latency,
preparation time and peak memory depend on the machine and are not compared
(`rag_bench.measurements`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..measurements import is_measurement
from .collect import Entry, collect_entries
from .readers import differing_fields, reader_fingerprint, recorded_fingerprint
from .redact import REDACTED


@dataclass
class Check:
    """The outcome for one row: OK or FAIL, the largest deviation seen and why it failed."""

    entry: Entry
    ok: bool
    detail: str
    max_deviation: float | None = None
    deviations: dict[str, tuple[float, float]] = field(default_factory=dict)


def compare(published: Entry, rerun: Entry, tolerance: float, footprint_tolerance: float) -> Check:
    """Compare aggregates: absolute `tolerance` for scores, relative `footprint_tolerance` for storage."""
    if rerun.config_hash != published.config_hash:
        why = ("the row was published before reader depth was recorded (the protocol changed): re-publish it"
               if published.reader_k is None else "the task data, provider version or settings changed")
        return Check(published, False, f"configuration differs (published {published.config_hash}, re-run "
                     f"{rerun.config_hash}): {why}")
    worst, failures, deviations = 0.0, [], {}
    if recorded_fingerprint(published) is not None:  # rows published before it was recorded have none to compare
        changed = differing_fields(reader_fingerprint(published), reader_fingerprint(rerun))
        if changed:
            failures.append(f"reader fingerprint differs ({'; '.join(changed)})")
    for name, agg in sorted(published.aggregate.items()):
        if is_measurement(name):
            continue
        if name not in rerun.aggregate:
            failures.append(f"{name} missing")
            continue
        old, new = float(agg["value"]), float(rerun.aggregate[name]["value"])
        deviations[name] = (old, new)
        if name.startswith("footprint"):
            deviation, limit = abs(new - old) / max(abs(old), 1e-12), footprint_tolerance
        else:
            deviation, limit = abs(new - old), tolerance
            worst = max(worst, deviation) if deviation == deviation else worst
        if not deviation <= limit:  # NaN never passes
            failures.append(f"{name} {old:.4f} -> {new:.4f}")
    if failures:
        return Check(published, False, "; ".join(failures), worst, deviations)
    return Check(published, True, f"{len(deviations)} figures within tolerance", worst, deviations)


def rerun(entry: Entry, runs_dir: Path) -> tuple[Entry | None, str]:
    """Run the row's recorded command into `runs_dir`; the new row, or None and why not."""
    command = entry.command
    if not command or command[:2] != ["rag-bench", "run"]:
        return None, "no `rag-bench run` command recorded in the manifest"
    if any(REDACTED in part for part in command):
        return None, "the recorded command had secrets redacted; re-run it by hand with your own settings"
    # A later --runs-dir wins in click, so the recorded command stays as published.
    done = subprocess.run(
        [sys.executable, "-m", "rag_bench.cli", *command[1:], "--runs-dir", str(runs_dir)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"command failed (exit {done.returncode}): {tail[0]}"
    found = [e for e in collect_entries(runs_dir) if e.task == entry.task]
    if len(found) != 1:
        return None, f"expected one finished run, found {len(found)}"
    return found[0], ""


def verify_entries(entries: list[Entry], tolerance: float = 0.01, footprint_tolerance: float = 0.1,
                   keep_runs: Path | None = None, progress=None) -> list[Check]:
    """Re-run and compare every entry; `progress(check)` is called after each row."""
    checks = []
    for number, entry in enumerate(entries):
        with tempfile.TemporaryDirectory(prefix="rag-bench-verify-") as tmp:
            runs_dir = (keep_runs / f"{number:03d}-{entry.row_id}") if keep_runs else Path(tmp)
            new, why = rerun(entry, runs_dir)
            check = compare(entry, new, tolerance, footprint_tolerance) if new else Check(entry, False, why)
        checks.append(check)
        if progress is not None:
            progress(check)
    return checks

"""What a results report is made of: full runs for the comparison, sweeps, write-path curves, all found under a runs folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import RagBenchError
from ...leaderboard.collect import Entry, collect_entries

SWEEP_SUMMARY = "summary.json"
CURVE = "curve.json"


@dataclass
class ReportInputs:
    """Everything one report is built from."""

    entries: list[Entry]
    sweeps: list[tuple[Path, dict[str, Any]]]
    curves: list[tuple[Path, dict[str, Any]]]
    sources: list[Path]


def full_runs(entries: list[Entry]) -> list[Entry]:
    """Runs over a whole split: sweep cells and other `--limit` runs are slices, not comparison rows."""
    return [e for e in entries if (e.manifest.get("task") or {}).get("limit") is None]


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RagBenchError(f"{path}: unreadable ({exc}); re-run the command that made it or remove the folder") from None


def _found(folder: Path, name: str) -> list[tuple[Path, dict[str, Any]]]:
    if not folder.is_dir():
        return []
    return [(path.parent, _read(path)) for path in sorted(folder.glob(f"*/{name}"))]


def gather(runs_dir: Path, sources: list[Path]) -> ReportInputs:
    """Full runs from `sources` (run folders, runs roots, published results); sweeps from
    `runs_dir/sweeps/*/summary.json`; write-path curves from `runs_dir/adapt-curves/*/curve.json`."""
    entries = full_runs(collect_entries(*sources))
    sweeps = _found(runs_dir / "sweeps", SWEEP_SUMMARY)
    curves = _found(runs_dir / "adapt-curves", CURVE)
    if not entries and not sweeps and not curves:
        raise RagBenchError(f"nothing to report under {', '.join(map(str, sources))}: no finished full runs, "
                            f"sweeps or adapt-curves; run `rag-bench run ...` (or sweep / memory adapt-curve) first")
    return ReportInputs(entries, sweeps, curves, sources)

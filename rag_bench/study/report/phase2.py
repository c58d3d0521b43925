"""Where a sweep's cells stand against the provider's default: which cell is the default, and which is best on a
metric (the phase-2 section of docs/RESULTS.md)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ...registry import registry
from ...summary import format_aggregate

#: The metric a phase-2 sweep is read by: the generated evidence against the gold evidence.
CHOOSE_BY = "evidence_rougeL"


def provider_defaults(provider: str) -> dict[str, str]:
    """The provider's default settings as the strings a sweep's cells carry ({} for an unknown provider)."""
    try:
        params = registry().providers.get(provider).Params
    except Exception:  # a sweep of a provider not installed here still renders, without the default marked
        return {}
    out = {}
    for f in dataclasses.fields(params):
        if f.default is not dataclasses.MISSING:
            out[f.name] = str(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = str(f.default_factory())
    return out


def default_cell(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The cell whose varied settings are all the provider's defaults, under the sweep's fixed params."""
    defaults = {**provider_defaults(summary["provider"]), **{k: str(v) for k, v in summary.get("params", {}).items()}}
    for cell in summary["cells"]:
        if all(defaults.get(axis) == str(value) for axis, value in cell["settings"].items()):
            return cell
    return None


def _name(cell: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell["settings"].items())


def default_line(summary: dict[str, Any], metric: str = CHOOSE_BY) -> str:
    """One sentence: the default's cell and figure, the best cell on `metric`, and whether their intervals overlap."""
    scored = [c for c in summary["cells"] if (c["metrics"].get(metric) or {}).get("value") is not None]
    if not scored:
        return f"No cell has {metric}."
    best = max(scored, key=lambda c: c["metrics"][metric]["value"])
    default = default_cell(summary)
    best_text = f"best {metric}: `{_name(best)}` {format_aggregate(best['metrics'][metric])}"
    if default is None:
        return f"The provider's default is not among these cells; {best_text}."
    agg = default["metrics"].get(metric)
    if default is best:
        return f"The default, `{_name(default)}`, is this grid's best on {metric}: {format_aggregate(agg)}."
    overlap = ""
    if agg and agg.get("ci95") and best["metrics"][metric].get("ci95"):
        low_best = best["metrics"][metric]["ci95"][0]
        overlap = (" (the intervals overlap: no difference shown)" if low_best <= agg["ci95"][1]
                   else " (the intervals do not overlap)")
    return f"The default, `{_name(default)}`, has {metric} {format_aggregate(agg)}; {best_text}{overlap}."

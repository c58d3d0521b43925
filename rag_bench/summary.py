"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Any, Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"


def metrics_table(metrics: dict[str, Any]) -> str:
    rows = []
    for name, agg in metrics["aggregate"].items():
        ci = agg.get("ci95")
        rows.append([name, _fmt(agg["value"]), f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "-", agg["n"]])
    return table(["metric", "value", "95% CI", "n"], rows)

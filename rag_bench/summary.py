"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Any, Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: columns padded to their widest cell, a dashed line under the headers."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"


def metrics_table(metrics: dict[str, Any]) -> str:
    """One row per aggregate: value, interval, n, and (judge metrics) the questions left unscored."""
    rows = []
    for name, agg in metrics["aggregate"].items():
        ci = agg.get("ci95")
        rows.append([name, _fmt(agg["value"]), f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "-", agg["n"],
                     agg.get("unscored", "")])
    return table(["metric", "value", "95% CI", "n", "unscored"], rows)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def format_aggregate(agg: dict[str, Any] | None, digits: int = 3, with_ci: bool = True) -> str:
    """`0.712 [0.668, 0.755]` from an aggregate's value and ci95; `-` when missing or not a number."""
    value = (agg or {}).get("value")
    if not isinstance(value, (int, float)) or value != value:
        return "-"
    if abs(value) >= 100:
        digits = 0
    text = f"{value:.{digits}f}"
    ci = agg.get("ci95")
    if with_ci and ci:
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text

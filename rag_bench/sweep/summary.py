"""A sweep's results: summary.json / .csv / .md and one heat-map per metric, beside the cells' logs."""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from pathlib import Path
from typing import Any, Sequence

from ..jsonl import write_json_atomic, write_text_atomic
from ..manifest import now
from ..run_dir import RunDir
from ..summary import format_aggregate, markdown_table
from ..task_store import load_task
from .execute import CellOutcome
from .spec import SweepSpec

SUMMARY = "summary.json"


def _metrics_of(path: Path | None, names: Sequence[str]) -> dict[str, Any]:
    if path is None or not RunDir(path).metrics_path.is_file():
        return {}
    aggregate = RunDir(path).read_metrics()["aggregate"]
    return {name: aggregate[name] for name in names if name in aggregate}


def summarise(spec: SweepSpec, outcomes: Sequence[CellOutcome], command: Sequence[str] | None,
              max_parallel: int = 1, executor: str = "local") -> dict[str, Any]:
    """The sweep as data: its settings, and per cell the varied values, status, run folder and chosen metrics.

    The shape is the same whatever the executor (`local`, `slurm`, `ray`), which is recorded beside max_parallel.
    """
    task = load_task(spec.task)
    return {
        "sweep": spec.name,
        "command": list(command) if command else None,
        "max_parallel": max_parallel,
        "executor": executor,
        "created": now(),
        "provider": spec.provider,
        "task": spec.task,
        "task_name": task.name,  # spec.task may be the path of a card file
        "split": spec.split or task.card.default_split,
        "reader_k": spec.reader_k,
        "limit": spec.limit,
        "reader": spec.reader,
        "params": spec.params,
        "axes": spec.axes,  # the grid's order (JSON objects are written with sorted keys)
        "grid": {axis: list(values) for axis, values in spec.grid.items()},
        "metrics": list(spec.metrics),
        "cells": [
            {
                "name": o.cell.name,
                "settings": dict(o.cell.varied),
                "status": "failed" if o.status == "failed" else "done",
                "ran_now": o.status == "done",  # False: finished by an earlier invocation (or failed)
                "run": str(o.run_path) if o.run_path else None,
                "seconds": round(o.seconds, 3),
                "error": o.error,
                "log": str(o.log) if o.log else None,
                "metrics": _metrics_of(o.run_path, spec.metrics),
            }
            for o in outcomes
        ],
    }


def axes_of(summary: dict[str, Any]) -> list[str]:
    """The grid's axes in the sweep file's order."""
    return list(summary.get("axes") or summary["grid"])


def grid_text(summary: dict[str, Any]) -> str:
    """`z_dim {64, 256} x m_tokens {1, 4}`."""
    return " x ".join(f"{axis} {{{', '.join(summary['grid'][axis])}}}" for axis in axes_of(summary))


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one per cell, the grid's settings, status, then each metric with its interval."""
    axes = axes_of(summary)
    header = [*axes, "status", *summary["metrics"]]
    rows = []
    for cell in summary["cells"]:
        values = [format_aggregate(cell["metrics"].get(m)) for m in summary["metrics"]]
        rows.append([*(cell["settings"][a] for a in axes), cell["status"], *values])
    return header, rows


def markdown(summary: dict[str, Any]) -> str:
    """The summary's table as Markdown (summary.md)."""
    return markdown_table(*table_rows(summary))


def csv_text(summary: dict[str, Any]) -> str:
    """One row per cell: settings, status, run folder, and value / CI bounds per metric."""
    axes = axes_of(summary)
    out = io.StringIO()
    writer = csv.writer(out)
    metric_cols = [f"{m}{suffix}" for m in summary["metrics"] for suffix in ("", "_ci_low", "_ci_high")]
    writer.writerow([*axes, "status", "run", "seconds", *metric_cols, "error"])
    for cell in summary["cells"]:
        values = []
        for m in summary["metrics"]:
            agg = cell["metrics"].get(m) or {}
            ci = agg.get("ci95") or ["", ""]
            values += [agg.get("value", ""), ci[0], ci[1]]
        writer.writerow([*(cell["settings"][a] for a in axes), cell["status"], cell["run"] or "", cell["seconds"],
                         *values, cell["error"] or ""])
    return out.getvalue()


def plot_name(metric: str) -> str:
    """`recall@5` -> `heatmap-recall-at-5.png`."""
    return "heatmap-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", metric.replace("@", "-at-")) + ".png"


def heatmap(summary: dict[str, Any], metric: str, path: Path) -> Path:
    """The metric over the grid: first axis across, second down, one panel per combination of any further axes.

    Each square shows the value and its 95% interval; failed cells are marked.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    grid = summary["grid"]
    axes = axes_of(summary)
    x_axis, y_axis, rest = axes[0], (axes[1] if len(axes) > 1 else None), axes[2:]
    xs, ys = grid[x_axis], (grid[y_axis] if y_axis else [""])
    by_settings = {tuple(sorted(c["settings"].items())): c for c in summary["cells"]}
    panels = list(itertools.product(*(grid[a] for a in rest))) or [()]
    values = [((c["metrics"].get(metric) or {}).get("value")) for c in summary["cells"]]
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, grid_axes = plt.subplots(rows, cols, figsize=(1.6 + 1.5 * len(xs) * cols, 1.2 + 0.9 * len(ys) * rows), squeeze=False)
    image = None
    for index, fixed in enumerate(panels):
        ax = grid_axes[index // cols][index % cols]
        matrix = np.full((len(ys), len(xs)), np.nan)
        for yi, y in enumerate(ys):
            for xi, x in enumerate(xs):
                settings = {x_axis: x, **({y_axis: y} if y_axis else {}), **dict(zip(rest, fixed))}
                cell = by_settings.get(tuple(sorted(settings.items())))
                agg = (cell or {}).get("metrics", {}).get(metric)
                if agg and agg.get("value") is not None:
                    matrix[yi, xi] = agg["value"]
                label = "failed" if cell and cell["status"] == "failed" else format_aggregate(agg).replace(" [", "\n[")
                bright = np.isnan(matrix[yi, xi]) or (matrix[yi, xi] - vmin) / (vmax - vmin) > 0.6  # viridis turns yellow
                ax.text(xi, yi, label, ha="center", va="center", fontsize=7, color="black" if bright else "white")
        image = ax.imshow(matrix, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(xs)), xs)
        ax.set_yticks(range(len(ys)), ys)
        ax.set_xlabel(x_axis)
        if y_axis:
            ax.set_ylabel(y_axis)
        if rest:
            ax.set_title(", ".join(f"{a}={v}" for a, v in zip(rest, fixed)), fontsize=9)
    for index in range(len(panels), rows * cols):
        grid_axes[index // cols][index % cols].axis("off")
    fig.colorbar(image, ax=grid_axes.ravel().tolist(), shrink=0.8, label=metric)
    fig.suptitle(f"{summary['provider']} on {summary['task_name']}: {metric}", fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_summary(summary: dict[str, Any], out: Path, plots: bool = True) -> list[Path]:
    """Write summary.json, summary.csv, summary.md and (with `plots`) a heat-map per metric into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / SUMMARY, summary)
    write_text_atomic(out / "summary.csv", csv_text(summary))
    write_text_atomic(out / "summary.md", markdown(summary))
    written = [out / SUMMARY, out / "summary.csv", out / "summary.md"]
    if plots and any(c["metrics"] for c in summary["cells"]):
        written += [heatmap(summary, metric, out / plot_name(metric)) for metric in summary["metrics"]]
    return written

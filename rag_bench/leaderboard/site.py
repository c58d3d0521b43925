"""Build the static site: index.html, runs/<row>.html, plots/*.png and the assets.

The site opens from file:// with no server: data is inlined in the pages, the
only script is the packaged leaderboard.js, and a Content-Security-Policy
forbids inline scripts as a second line of defence behind escaping.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import RagBenchError
from ..manifest import now
from .collect import Entry
from .index_page import TaskView, index_body
from .markup import ASSETS, asset_text, page
from .plots import corpus_axis_plot, task_plots, write_curve_plots
from .readers import label, reader_groups
from .run_page import run_body

MARKER = ".rag-bench-site"


@dataclass
class BuiltSite:
    """What `build_site` wrote."""

    root: Path
    index: Path
    pages: list[Path]
    plots: list[Path]
    entries: list[Entry]


def slug(name: str) -> str:
    """A file-name-safe form of a task name that stays unique for distinct names."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "task"
    return clean if clean == name else f"{clean}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _prepare_out(out: Path) -> None:
    """Create the output folder; only ever clear one that an earlier build made."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise RagBenchError(f"{out} exists and is not a site built by rag-bench; pass an empty or new folder to --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("built by `rag-bench leaderboard build`; the whole folder is replaced on rebuild\n")


def build_site(entries: list[Entry], out: Path, plots: bool = True, write_curves: Path | None = None) -> BuiltSite:
    """Write the site for `entries` into `out` (replacing an earlier build there); `write_curves` is a folder of
    `rag-bench write-curve` results whose curves are shown under their task."""
    _prepare_out(out)
    built = now()
    for asset in ASSETS:
        (out / asset).write_text(asset_text(asset), encoding="utf-8")
    by_task: dict[str, list[Entry]] = {}
    for entry in entries:
        by_task.setdefault(entry.task, []).append(entry)
    views = []
    axis = corpus_axis_plot(entries, out) if plots else None  # one image across tasks, shown under each of them
    writes = write_curve_plots(write_curves, out) if plots and write_curves is not None else {}
    for task in sorted(by_task):
        # One table per reader: rows whose readers' fingerprints differ are never ranked in one column.
        groups = reader_groups(by_task[task])
        for key, fp, group in groups:
            view_slug = slug(task) if len(groups) == 1 else f"{slug(task)}--{key}"
            made = task_plots(view_slug, group, out) if plots else []
            if key == groups[0][0]:  # once per task
                made += ([axis[0]] if axis and task in axis[1] else []) + writes.get(task, [])
            views.append(TaskView(task, view_slug, group, made, reader_label=label(fp), reader_groups=len(groups)))
    index = out / "index.html"
    index.write_text(page("rag-bench leaderboard", index_body(views), "", built), encoding="utf-8")
    (out / "runs").mkdir(exist_ok=True)
    pages = []
    for entry in entries:
        path = out / "runs" / f"{entry.row_id}.html"
        title = f"{entry.provider} on {entry.task} ({entry.reader})"
        path.write_text(page(title, run_body(entry), "../", built), encoding="utf-8")
        pages.append(path)
    plot_files = sorted((out / "plots").glob("*.png")) if (out / "plots").is_dir() else []
    return BuiltSite(out, index, pages, plot_files, entries)

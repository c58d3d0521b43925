"""Static plots made at build time (matplotlib, Agg backend): PNG files beside the pages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .collect import Entry
from .columns import primary_metric, recall_cutoffs


@dataclass(frozen=True)
class Plot:
    """One image of a task: its file (relative to the site root), title and a caption."""

    path: str
    title: str
    caption: str


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _label(entry: Entry, entries: list[Entry]) -> str:
    same_provider = [e for e in entries if e.provider == entry.provider]
    return entry.provider if len(same_provider) == 1 else f"{entry.provider} ({entry.reader}, {entry.config_hash[:6]})"


def _save(fig, site: Path, name: str) -> str:
    rel = f"plots/{name}"
    (site / "plots").mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(site / rel, dpi=110)
    _pyplot().close(fig)
    return rel


def recall_curves(task_slug: str, entries: list[Entry], site: Path, family: str = "recall") -> Plot | None:
    """`family@k` against k, one line per row, with 95% interval bars."""
    ks = recall_cutoffs(entries, family)
    if not ks:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for entry in entries:
        points = [(k, entry.aggregate[f"{family}@{k}"]) for k in ks if f"{family}@{k}" in entry.aggregate]
        if not points:
            continue
        xs = [k for k, _ in points]
        ys = [agg["value"] for _, agg in points]
        err = [[max(0.0, agg["value"] - agg["ci95"][0]) if agg.get("ci95") else 0.0 for _, agg in points],
               [max(0.0, agg["ci95"][1] - agg["value"]) if agg.get("ci95") else 0.0 for _, agg in points]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=_label(entry, entries))
    ax.set_xscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("k (passages)")
    ax.set_ylabel(f"{family}@k")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = _save(fig, site, f"{task_slug}-{family}-at-k.png")
    return Plot(path, f"{family}@k", f"{family}@k per provider; bars are 95% bootstrap intervals.")


def quality_vs(task_slug: str, entries: list[Entry], site: Path, x_metric: str, x_label: str) -> Plot | None:
    """The task's primary quality metric against an efficiency figure on a log x axis.

    Rows without the figure, or with a value of zero (no storage), cannot sit on
    a log axis; the caption names them.
    """
    quality = primary_metric(entries)
    if quality is None:
        return None
    shown, left_out = [], []
    for entry in entries:
        x, y = entry.value(x_metric), entry.value(quality)
        (shown if x is not None and x > 0 and y is not None else left_out).append(entry)
    if not shown:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for entry in shown:
        agg = entry.aggregate[quality]
        ci = agg.get("ci95")
        yerr = [[agg["value"] - ci[0]], [ci[1] - agg["value"]]] if ci else None
        ax.errorbar([entry.value(x_metric)], [agg["value"]], yerr=yerr, marker="o", capsize=3, label=_label(entry, entries))
    ax.set_xscale("log")
    ax.set_xlabel(f"{x_label} (log scale)")
    ax.set_ylabel(quality)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    path = _save(fig, site, f"{task_slug}-{quality.replace('@', '-at-')}-vs-{x_metric}.png")
    caption = f"{quality} against {x_label}; bars are 95% bootstrap intervals."
    if left_out:
        caption += " Not shown (no value > 0 to place on a log axis): " + ", ".join(_label(e, entries) for e in left_out) + "."
    return Plot(path, f"{quality} vs {x_label}", caption)


def task_plots(task_slug: str, entries: list[Entry], site: Path) -> list[Plot]:
    """Every plot of one task that its rows have data for."""
    made = [
        recall_curves(task_slug, entries, site, "recall"),
        recall_curves(task_slug, entries, site, "answer_recall"),
        quality_vs(task_slug, entries, site, "latency_p50_ms", "latency p50, ms per question"),
        quality_vs(task_slug, entries, site, "footprint_mb_per_1k", "footprint, MB per 1K passages"),
    ]
    return [plot for plot in made if plot is not None]


def corpus_axis_plot(entries: list[Entry], site: Path) -> tuple[Plot, list[str]] | None:
    """The corpus-size axis over the NQ family's rows (rag_bench.study.report.corpus_axis) and the tasks to show it under;
    None when no row of the family is there."""
    from ..study.report.corpus_axis import FIGURE, board_plot

    rel = f"plots/{FIGURE}"
    made = board_plot(entries, site, rel)
    if made is None:
        return None
    caption, tasks = made
    return Plot(rel, "corpus-size axis", caption), tasks


def write_curve_plots(folder: Path, site: Path) -> dict[str, list[Plot]]:
    """Per task, the write curve and the forgetting curve of the write-curve results in `folder` (`rag-bench
    write-curve`; the figures RESULTS.md shows), drawn into the site; {} when the folder holds none."""
    from ..study.report.write_curve import load_results, plot_forgetting, plot_write_curves

    results = load_results(folder) if folder.is_dir() else []
    plots: dict[str, list[Plot]] = {}
    for task in dict.fromkeys(r.get("task", "?") for r in results):
        group = [r for r in results if r.get("task") == task]
        made = plots.setdefault(task, [])
        commands = "; ".join(f"`{' '.join(r['command'])}`" for r in group if r.get("command"))
        if any(r.get("can_write") for r in group):
            rel = f"plots/write-{task}.png"
            plot_write_curves(task, group, site / rel)
            made.append(Plot(rel, "new documents: write curve",
                             "Held-out dev passages written into each prepared provider: the new passages' recall@5 "
                             "(dotted: the same provider prepared with them) and the old passages' retention, against "
                             f"optimisation steps per passage (one write where none). From {folder.name}/: {commands}"))
        if any(r.get("forgetting") for r in group):
            rel = f"plots/forgetting-{task}.png"
            plot_forgetting(task, group, site / rel)
            made.append(Plot(rel, "new documents: forgetting curve",
                             "The held-out passages written in batches one after another; after each batch, the "
                             "recall@5 of the original passages and of every batch written so far."))
    return plots

"""Answers against evidence: each answering reader's EM beside the evidence ROUGE-L and bytes per passage it read.

Per task and per reader fingerprint (rows of different readers are never set on one axis: their EM differs for
reasons that are not the evidence), every row with an EM is one point on two panels: EM against evidence ROUGE-L
(does better evidence give better answers?) and EM against the row's counted bytes per passage (what the answers
cost in storage), each with its 95% interval.
"""

from __future__ import annotations

from pathlib import Path

from ...leaderboard.collect import Entry
from ...leaderboard.readers import group_key
from ...summary import format_aggregate, markdown_table
from .equal_bytes import bytes_per_passage, row_labels


def _groups(entries: list[Entry]) -> dict[tuple[str, str], list[Entry]]:
    out: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        if entry.value("em") is not None:
            out.setdefault((entry.task, group_key(entry)), []).append(entry)
    return out


def _plot(title: str, rows: list[Entry], labels: dict[str, str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11.2, 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, entry in enumerate(rows):
        em = entry.aggregate["em"]
        ci = em.get("ci95") or (em["value"], em["value"])
        yerr = [[em["value"] - ci[0]], [ci[1] - em["value"]]]
        style = dict(marker="osD^vP*Xhp<>"[n % 12], capsize=3, linestyle="none", color=colours[n % len(colours)],
                     label=labels[entry.row_id])
        rouge = entry.value("evidence_rougeL")
        if rouge is not None:
            axes[0].errorbar([rouge], [em["value"]], yerr=yerr, **style)
        per = bytes_per_passage(entry)
        if per and sum(per.values()) > 0:
            axes[1].errorbar([sum(per.values())], [em["value"]], yerr=yerr, **style)
    axes[0].set_xlabel("evidence ROUGE-L")
    axes[1].set_xlabel("bytes per passage at query time (footprint; log scale)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("EM")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3, which="both")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=max(1, min(4, len(names))), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 * ((len(names) + 3) // 4), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def answers_section(entries: list[Entry], figures: Path, out_md: Path) -> str:
    """Per task and reader: a table and a plot of EM against evidence ROUGE-L and against bytes per passage."""
    groups = _groups(entries)
    parts = ["## Answers against evidence and storage", ""]
    if not groups:
        return "\n".join(parts + ["No row has an EM: run with a reader (e.g. `--reader extractive`).", ""])
    parts.append("EM of each row that a reader answered, beside the evidence ROUGE-L and the bytes per passage it was "
                 "given; one table and plot per task and reader fingerprint.")
    for (task, group), rows in sorted(groups.items()):
        rows = sorted(rows, key=lambda e: -(e.value("em") or 0))
        labels = row_labels(rows)
        table = [[labels[e.row_id], format_aggregate(e.aggregate.get("em")), format_aggregate(e.aggregate.get("evidence_rougeL")),
                  f"{sum(bytes_per_passage(e).values()):,.0f}" if bytes_per_passage(e) else "-"] for e in rows]
        title = f"{task}, reader {rows[0].reader} ({group})"
        parts += ["", f"### {title}", "", markdown_table(["row", "EM", "evidence ROUGE-L", "bytes/passage"], table)]
        path = _plot(f"{title}: EM against evidence and storage", rows, labels, figures / f"em-{task}-{group}.png")
        parts.append(f"![em-{task}-{group}]({path.relative_to(out_md.parent).as_posix()})")
    parts.append("")
    return "\n".join(parts)

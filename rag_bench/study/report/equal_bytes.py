"""Quality against bytes per passage: where each provider's rows stand against storing the first B bytes of text.

For every task, every full run with a footprint is one point: its counted
footprint (index, text store, memory table: the parts not named ``extra_*``)
divided by the task's passages, against evidence ROUGE-L and
answer_recall@5 with their 95% intervals. Rows of one provider that differ
only in `evidence_bytes` (the equal-bytes baselines, docs/PROVIDERS.md) are
joined by a line, so the curve of "simply storing B bytes per passage" shows
beside the learned memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..analysis.multihop import FOCUS
from ...leaderboard.collect import Entry
from ...summary import format_aggregate, markdown_table
from .paired import paired_difference

METRICS = ("evidence_rougeL", "answer_recall@5")
CUT = "evidence_bytes"


def _settings(entry: Entry) -> dict[str, Any]:
    return (entry.manifest.get("provider") or {}).get("settings") or {}


def cut_evidence(entry: Entry) -> bool:
    """Whether the row hands over only the first `evidence_bytes` bytes of each passage."""
    return _settings(entry).get(CUT) is not None


def bytes_per_passage(entry: Entry) -> dict[str, float] | None:
    """Counted footprint parts in bytes per passage (None when the run recorded no footprint or passage count)."""
    parts = entry.manifest.get("footprint_bytes") or {}
    passages = (entry.manifest.get("task") or {}).get("passages")
    if not parts or not passages:
        return None
    return {part: value / passages for part, value in sorted(parts.items()) if not part.startswith("extra_")}


def _label(entry: Entry) -> str:
    settings = _settings(entry)
    label = entry.provider + (f" base={settings['base']}" if "base" in settings else "")
    if CUT in settings:
        label += f" {settings[CUT]} B" if settings[CUT] is not None else " whole"
    return label


def row_labels(entries: list[Entry]) -> dict[str, str]:
    """Each row's label, with its configuration's hash where two rows would read the same."""
    plain = {e.row_id: _label(e) for e in entries}
    twins = {label for label in plain.values() if list(plain.values()).count(label) > 1}
    return {e.row_id: plain[e.row_id] + (f" {e.config_hash[:6]}" if plain[e.row_id] in twins else "") for e in entries}


def _family(entry: Entry) -> tuple[str, str] | None:
    """Rows sharing provider and every setting but `evidence_bytes`: one curve (None for rows without the setting)."""
    settings = _settings(entry)
    if CUT not in settings:
        return None
    rest = {k: v for k, v in settings.items() if k != CUT}
    return entry.provider, repr(sorted(rest.items(), key=lambda kv: kv[0]))


def _plot(task: str, points: list[tuple[Entry, float]], labels: dict[str, str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, axes = plt.subplots(1, len(METRICS), figsize=(5.6 * len(METRICS), 4.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^vP*Xhp<>"
    providers = sorted({e.provider for e, _ in points})
    families: dict[tuple[str, str], list[tuple[float, Entry]]] = {}
    for entry, x in points:
        key = _family(entry)
        if key is not None:
            families.setdefault(key, []).append((x, entry))
    for ax, metric in zip(axes[0], METRICS):
        for n, (entry, x) in enumerate(points):
            agg = entry.aggregate.get(metric)
            if not agg or agg.get("value") is None:
                continue
            ci = agg.get("ci95") or (agg["value"], agg["value"])
            ax.errorbar([x], [agg["value"]], yerr=[[agg["value"] - ci[0]], [ci[1] - agg["value"]]],
                        marker=markers[n % len(markers)], capsize=3, linestyle="none",
                        color=colours[providers.index(entry.provider) % len(colours)], label=labels[entry.row_id])
        for (provider, _), members in families.items():
            line = sorted((x, e.value(metric), _settings(e)[CUT]) for x, e in members if e.value(metric) is not None)
            if len(line) > 1:
                ax.plot([x for x, _, _ in line], [y for _, y, _ in line], linestyle="--", alpha=0.5,
                        color=colours[providers.index(provider) % len(colours)])
                for x, y, cut in line:
                    ax.annotate(f"{cut} B" if cut is not None else "whole", (x, y), textcoords="offset points",
                                xytext=(0, -12), ha="center", fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("bytes per passage at query time (footprint; log scale)")
        ax.set_ylabel(metric)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3, which="both")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), fontsize=8)
    fig.suptitle(f"{task}: evidence quality against storage per passage (dashed: one provider, evidence cut to B bytes)")
    fig.tight_layout(rect=(0, 0.06 * ((len(names) + 3) // 4), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _against_cut(focus: Entry, rows: list[Entry], labels: dict[str, str]) -> str:
    """The focus row minus each equal-bytes row, per question (paired bootstrap)."""
    cut = sorted((e for e in rows if cut_evidence(e)), key=lambda e: _settings(e)[CUT])
    if not cut:
        return ""
    return (f"{labels[focus.row_id]} minus each equal-bytes row, paired bootstrap: "
            + "; ".join(f"{labels[e.row_id]}: " + ", ".join(f"{m} {paired_difference(focus, e, m)}" for m in METRICS)
                        for e in cut) + ".\n")


def equal_bytes_section(entries: list[Entry], figures: Path, out_md: Path) -> str:
    """Per task: a table and a plot of evidence ROUGE-L and answer_recall@5 against bytes per passage."""
    parts = ["## Quality against bytes per passage (equal-bytes baselines)", "",
             "Each row's footprint (what it needs at query time; parts named `extra_*` not counted) per passage, beside "
             "its evidence quality. `dense`/`bm25` rows with `evidence_bytes` B store and hand over only the first B "
             "UTF-8 bytes of each passage (title included), cut at a word boundary; their retrieval still reads whole "
             "passages, so only the text store shrinks (docs/PROVIDERS.md). `whole text` is the bytes per passage the "
             "uncut text store would hold."]
    by_task: dict[str, list[Entry]] = {}
    for entry in entries:
        by_task.setdefault(entry.task, []).append(entry)
    for task, rows in by_task.items():
        labels = row_labels(rows)
        points, left_out, table = [], [], []
        for entry in sorted(rows, key=lambda e: sum((bytes_per_passage(e) or {}).values())):
            per = bytes_per_passage(entry)
            total = sum(per.values()) if per else 0
            (points.append((entry, total)) if total > 0 else left_out.append(labels[entry.row_id]))
            whole = (entry.metadata or {}).get("whole_text_bytes")
            passages = (entry.manifest.get("task") or {}).get("passages")
            table.append([labels[entry.row_id], f"{total:,.0f}" if per else "-",
                          " + ".join(f"{name} {value:,.0f}" for name, value in per.items()) if per else "-",
                          f"{whole / passages:,.0f}" if whole and passages else "-",
                          *(format_aggregate(entry.aggregate.get(m)) for m in METRICS)])
        parts += ["", f"### {task} ({rows[0].split} split)", "",
                  markdown_table(["row", "bytes/passage", "parts (bytes/passage)", "whole text", *METRICS], table)]
        if points:
            path = _plot(task, points, labels, figures / f"equal-bytes-{task}.png")
            parts.append(f"![equal-bytes-{task}]({path.relative_to(out_md.parent).as_posix()})")
        if left_out:
            parts.append(f"Not on the plot (no storage to place on a log axis): {', '.join(left_out)}.\n")
        parts += [text for text in (_against_cut(f, rows, labels) for f in rows if f.provider == FOCUS) if text]
        parts.append("")
    return "\n".join(parts)

"""The corpus-size axis (issue 29): each provider variant's figures against N, the passages of its task's corpus.

The NQ corpus family (docs/TASKS_NQ_FAMILY.md) puts nq_5k's questions over
nested corpora of 1,000 to 17,328 passages, so a provider's rows on its
members differ only in N. Every full-split row of a member task is one
point; N is the corpus size the row recorded (``manifest.task.passages``),
else the card's ``build.corpus_size``. Rows of one provider with the same
provider settings and split are one line (a *variant*); where a variant has
several rows at one N (other readers, cut-offs), the reader-``none`` row is
kept, else the latest, and the others are named as left out. As on the
board, a setting that only one of two rows records (added by a later
provider version) does not tell them apart.

Panels: recall@1, recall@5, evidence ROUGE-L, answer_recall@5 (with their
95% intervals), latency p50, bytes per passage (the counted footprint, as in
the equal-bytes section) and preparation time (the state's build time;
llm_memory's includes its training, whose budget ``max_train_steps`` is
stated per point).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ...leaderboard.collect import Entry
from ...summary import format_aggregate, markdown_table
from .equal_bytes import bytes_per_passage

#: The NQ corpus family's tasks (nq_5k is its 5,000-passage member; tests check this against the builder's MEMBERS).
FAMILY = ("nq_1k", "nq_2k5", "nq_5k", "nq_10k", "nq_17k")
#: The script that lists the runs (and publish commands) that make the axis.
SCRIPT = "benchmarks/corpus_axis.sh"
BYTES = "bytes_per_passage"
TRAINED = "llm_memory"
BUDGET = "max_train_steps"
#: (metric, panel title, log y axis) in panel order.
PANELS = (
    ("recall@1", "recall@1", False),
    ("recall@5", "recall@5", False),
    ("evidence_rougeL", "evidence ROUGE-L", False),
    ("answer_recall@5", "answer_recall@5", False),
    ("latency_p50_ms", "latency p50, ms per question", True),
    (BYTES, "bytes per passage (footprint)", True),
    ("prepare_s", "preparation time, s (llm_memory: incl. training)", True),
)
FIGURE = "corpus-axis.png"


@dataclass
class Point:
    """One row placed on the axis: its corpus size and the figures the panels show."""

    entry: Entry
    n: int
    #: metric -> {"value", "ci95"} (None where the row has no such figure).
    values: dict[str, dict[str, Any] | None]

    @property
    def budget(self) -> Any:
        """llm_memory's stated training budget (`max_train_steps`); None for other providers."""
        return _settings(self.entry).get(BUDGET) if self.entry.provider == TRAINED else None


@dataclass
class Line:
    """One provider variant: its points sorted by N."""

    provider: str
    split: str
    settings: dict[str, str]
    points: list[Point] = field(default_factory=list)
    label: str = ""


@dataclass
class Axis:
    """The lines, the corpus sizes found (sorted) and the rows not placed, each with why."""

    lines: list[Line]
    sizes: list[int]
    left_out: list[str]

    @property
    def tasks(self) -> list[str]:
        """The family tasks with at least one point, in order of N."""
        by_n = {p.entry.task: p.n for line in self.lines for p in line.points}
        return sorted(by_n, key=lambda task: (by_n[task], task))


def _settings(entry: Entry) -> dict[str, Any]:
    return (entry.manifest.get("provider") or {}).get("settings") or {}


def _flat(settings: dict[str, Any]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value, sort_keys=True) for key, value in settings.items()}


def corpus_size(entry: Entry) -> int | None:
    """N: the passages the row recorded; else the task card's `build.corpus_size` from the registry; else None."""
    passages = (entry.manifest.get("task") or {}).get("passages")
    if passages:
        return int(passages)
    from ...errors import RagBenchError
    from ...registry import registry

    try:
        card = registry().tasks.get(entry.task).card
    except RagBenchError:
        return None
    size = (card.raw.get("build") or {}).get("corpus_size")
    return int(size) if size else None


def _compatible(a: dict[str, str], b: dict[str, str]) -> bool:
    """Whether two rows' settings agree on every key both record (a setting a later provider version added is not
    compared, as on the board)."""
    return all(a[key] == b[key] for key in a.keys() & b.keys())


def point_values(entry: Entry) -> dict[str, dict[str, Any] | None]:
    """The panels' figures of one row: aggregates with intervals, bytes per passage from its footprint."""
    values: dict[str, dict[str, Any] | None] = {metric: entry.aggregate.get(metric) for metric, _, _ in PANELS}
    per = bytes_per_passage(entry)
    values[BYTES] = {"value": sum(per.values()), "ci95": None} if per else None
    return values


def _preferred(entry: Entry) -> tuple[bool, str]:
    return entry.reader == "none", entry.date


def _labels(lines: list[Line]) -> None:
    """Each line's label: the provider, plus the settings (and split) that tell its variants apart."""
    by_provider: dict[str, list[Line]] = {}
    for line in lines:
        by_provider.setdefault(line.provider, []).append(line)
    for members in by_provider.values():
        if len(members) == 1:
            members[0].label = members[0].provider
            continue
        described = [{**line.settings, "split": line.split} for line in members]
        # A key only some lines record (added by a later provider version) tells them apart only where recorded values differ.
        keys = sorted({key for d in described for key in d if len({x[key] for x in described if key in x}) > 1})
        plain = [key for key in keys if not key.startswith("resolved")] or keys
        for line, mine in zip(members, described):
            line.label = f"{line.provider} " + ", ".join(f"{key}={mine.get(key, '–')}" for key in plain)


def build_axis(entries: Iterable[Entry], tasks: Iterable[str] = FAMILY) -> Axis:
    """The family's full-split rows as one line per provider variant, points sorted by N."""
    tasks = set(tasks)
    placed: list[tuple[Entry, int]] = []
    left_out: list[str] = []
    for entry in entries:
        if entry.task not in tasks:
            continue
        if (entry.manifest.get("task") or {}).get("limit") is not None:
            left_out.append(f"{entry.row_id} (a --limit slice, not the whole split)")
            continue
        n = corpus_size(entry)
        if n is None:
            left_out.append(f"{entry.row_id} (corpus size not recorded and not in the task card)")
            continue
        placed.append((entry, n))
    lines: list[Line] = []
    rows: dict[int, dict[int, list[Entry]]] = {}  # id(line) -> N -> its rows there
    for entry, n in sorted(placed, key=lambda item: (-len(_settings(item[0])), item[0].row_id)):
        mine = _flat(_settings(entry))
        line = next((line for line in lines if (line.provider, line.split) == (entry.provider, entry.split)
                     and _compatible(line.settings, mine)), None)
        if line is None:
            line = Line(entry.provider, entry.split, mine)
            lines.append(line)
        line.settings = {**mine, **line.settings}
        rows.setdefault(id(line), {}).setdefault(n, []).append(entry)
    for line in lines:
        for n, members in sorted(rows[id(line)].items()):
            shown = max(members, key=_preferred)
            line.points.append(Point(shown, n, point_values(shown)))
            left_out += [f"{e.row_id} (same variant and N as {shown.row_id}, which is shown: reader none first, "
                         "then the latest)" for e in members if e is not shown]
    _labels(lines)
    lines.sort(key=lambda line: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", line.label)])
    sizes = sorted({p.n for line in lines for p in line.points})
    return Axis(lines, sizes, sorted(left_out))


def plot_axis(axis: Axis, path: Path, title: str = "NQ corpus family: figures against corpus size N") -> Path:
    """Small multiples, one panel per metric: x = N (log), one line per provider variant, 95% interval bars."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    columns = 4
    rows = (len(PANELS) + 1 + columns - 1) // columns  # one cell for the legend
    fig, grid = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    cells = [ax for row in grid for ax in row]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^vP*Xhp<>"
    for ax, (metric, name, log_y) in zip(cells, PANELS):
        for i, line in enumerate(axis.lines):
            shown = [(p.n, p.values[metric]) for p in line.points
                     if p.values.get(metric) and p.values[metric].get("value") is not None
                     and (not log_y or p.values[metric]["value"] > 0)]
            if not shown:
                continue
            xs = [n for n, _ in shown]
            ys = [agg["value"] for _, agg in shown]
            err = None if log_y else [  # intervals on the scores; the efficiency panels are single measurements
                [max(0.0, agg["value"] - agg["ci95"][0]) if agg.get("ci95") else 0.0 for _, agg in shown],
                [max(0.0, agg["ci95"][1] - agg["value"]) if agg.get("ci95") else 0.0 for _, agg in shown]]
            ax.errorbar(xs, ys, yerr=err, marker=markers[i % len(markers)], capsize=3, markersize=5,
                        color=colours[i % len(colours)], label=line.label)
        ax.set_xscale("log")
        if axis.sizes:
            ax.set_xlim(axis.sizes[0] / 1.6, axis.sizes[-1] * 1.6)
            ax.set_xticks(axis.sizes)
            ax.set_xticklabels([f"{n:,}" for n in axis.sizes], fontsize=7, rotation=30)
        ax.xaxis.set_minor_formatter(NullFormatter())
        if log_y:
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("N, passages (log scale)", fontsize=8)
        ax.grid(alpha=0.3, which="both")
    legend = cells[len(PANELS)]
    legend.axis("off")
    handles = {label: handle for ax in cells[:len(PANELS)] for handle, label in zip(*ax.get_legend_handles_labels())}
    if handles:
        legend.legend(list(handles.values()), list(handles), loc="center", fontsize=7, frameon=False)
    for ax in cells[len(PANELS) + 1:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def training_text(point: Point) -> str:
    """llm_memory's stated budget and what it did (steps, seconds); '-' for providers that do not train."""
    if point.entry.provider != TRAINED:
        return "-"
    steps, seconds = point.entry.value("train_steps"), point.entry.value("train_s")
    done = f"; trained {steps:,.0f} steps" if steps is not None else ""
    done += f" in {_seconds(seconds)} s" if seconds is not None else ""
    return f"{BUDGET}={point.budget if point.budget is not None else 'not recorded'}{done}"


def axis_table(axis: Axis) -> str:
    """One markdown row per point: variant, N, task, reader and every panel's figure (95% intervals on scores)."""
    headers = ["variant", "N", "task", "reader", "recall@1", "recall@5", "evidence ROUGE-L", "answer_recall@5",
               "latency p50 ms", "bytes/passage", "prepare s", "training (llm_memory)"]
    rows = []
    for line in axis.lines:
        for p in line.points:
            v = p.values
            rows.append([line.label, f"{p.n:,}", p.entry.task, p.entry.reader,
                         *(format_aggregate(v.get(m)) for m in ("recall@1", "recall@5", "evidence_rougeL", "answer_recall@5")),
                         format_aggregate(v.get("latency_p50_ms"), digits=2, with_ci=False),
                         f"{v[BYTES]['value']:,.0f}" if v.get(BYTES) else "-",
                         _seconds((v.get("prepare_s") or {}).get("value")), training_text(p)])
    return markdown_table(headers, rows)


def sizes_sentence(axis: Axis) -> str:
    """The sizes found, and a plain statement when there are fewer than two (no axis yet)."""
    found = ", ".join(f"{n:,}" for n in axis.sizes)
    if len(axis.sizes) >= 2:
        return f"{len(axis.sizes)} corpus sizes: N = {found} ({', '.join(axis.tasks)})."
    where = f"only N = {found}, {', '.join(axis.tasks)}" if axis.sizes else "no NQ-family row at all"
    return (f"**Fewer than two corpus sizes exist ({where}), so there is no axis yet:** every line is a single point. "
            f"Run the commands in `{SCRIPT}` and regenerate.")


def budget_lines(axis: Axis) -> list[str]:
    """One sentence per llm_memory variant: its stated training budget at each N."""
    out = []
    for line in axis.lines:
        if line.provider == TRAINED:
            out.append(f"- {line.label}: " + "; ".join(f"N = {p.n:,} ({p.entry.task}): {training_text(p)}"
                                                        for p in line.points) + ".")
    return out


def corpus_axis_section(entries: list[Entry], figures: Path, out_md: Path) -> str:
    """docs/RESULTS.md's "Corpus-size axis": the figure, the table, the rows and commands behind them, the budgets."""
    axis = build_axis(entries)
    parts = ["## Corpus-size axis", "",
             "Every provider variant against N, the passages of the NQ corpus family's member task "
             f"({', '.join(FAMILY)}: nq_5k's questions over nested corpora, docs/TASKS_NQ_FAMILY.md). One point per "
             "full-split row; N as the row recorded it. Scores are means with 95% bootstrap intervals; bytes per "
             "passage is the counted footprint (parts named `extra_*` not counted) over N; preparation time is the "
             "time its state took to build (llm_memory: including training). Rows of one variant at one N read by "
             "several readers show the reader-`none` row.", "", sizes_sentence(axis)]
    if not axis.lines:
        return "\n".join(parts + [""])
    path = plot_axis(axis, figures / FIGURE)
    parts += ["", f"![corpus-axis]({path.relative_to(out_md.parent).as_posix()})", "", axis_table(axis)]
    single = [line.label for line in axis.lines if len(line.points) == 1]
    if single and len(axis.sizes) >= 2:
        parts.append(f"Measured at one size only (a point, not a line): {', '.join(single)}.\n")
    budgets = budget_lines(axis)
    if budgets:
        parts += ["llm_memory's training budget at each point (the row's `max_train_steps`; training may stop "
                  "earlier on its dev routing):", "", *budgets, ""]
    parts += [f"Rows and the commands that made them (the runs for every size: `{SCRIPT}`):", ""]
    parts += [f"- {line.label} at N = {p.n:,}: `{p.entry.source.name}`: "
              + (f"`{' '.join(p.entry.command)}`" if p.entry.command else "(command not recorded)")
              for line in axis.lines for p in line.points]
    if axis.left_out:
        parts += ["", "Not on the axis: " + "; ".join(axis.left_out) + "."]
    return "\n".join(parts + [""])


def board_plot(entries: list[Entry], site: Path, rel: str) -> tuple[str, list[str]] | None:
    """The leaderboard's copy of the figure at `site/rel`: (caption, tasks it belongs to); None without family rows."""
    axis = build_axis(entries)
    if not axis.lines:
        return None
    plot_axis(axis, site / rel)
    caption = ("Corpus-size axis over the NQ family: one line per provider variant against N (log scale); bars are "
               "95% bootstrap intervals. " + sizes_sentence(axis).replace("**", ""))
    budgets = [f"{line.label}: " + ", ".join(f"N={p.n:,} {BUDGET}={p.budget}" for p in line.points)
               for line in axis.lines if line.provider == TRAINED]
    if budgets:
        caption += " llm_memory training budget per point: " + "; ".join(budgets) + "."
    return caption, axis.tasks

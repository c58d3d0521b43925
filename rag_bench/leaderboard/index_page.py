"""The front page: per task a compact headline table and the full table behind a toggle, significance marks, ties, plots."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import provenance
from .collect import Entry
from .columns import EFFICIENCY, HEADLINE, control_metrics, efficiency_metrics, fmt, quality_metrics, smallest_control_delta
from .latency import latency_note
from .markup import cell, command_text, esc, table
from .plots import Plot
from .significance import Comparison, best_row, pairwise_ties, ties_with_best
from .variants import variant_labels


@dataclass
class TaskView:
    """Everything the front page shows for one task."""

    task: str
    slug: str
    entries: list[Entry]
    plots: list[Plot]
    #: row_id -> the label that tells a provider's variants apart ("" for a provider with one row).
    labels: dict[str, str] = field(default_factory=dict)
    #: The reader every row of this view was read by (its fingerprint, described), and how many readers the task has.
    reader_label: str = ""
    reader_groups: int = 1

    def __post_init__(self):
        if not self.labels:
            self.labels = variant_labels(self.entries)


def _ci(agg: dict, signed: bool = False) -> str:
    ci = agg.get("ci95")
    return f'<span class="ci">[{esc(fmt(ci[0], signed=signed))}, {esc(fmt(ci[1], signed=signed))}]</span>' if ci else ""


def judged_note(agg: dict) -> str:
    """For a judge metric: how many questions it was scored over and how many the judge could not score."""
    if agg.get("unscored") is None:
        return ""
    return f' <span class="judged">n={esc(agg.get("n", ""))}, {esc(agg["unscored"])} unscored</span>'


def _name(entry: Entry, view: TaskView) -> str:
    label = view.labels.get(entry.row_id, "")
    return f"{entry.provider} ({label})" if label else entry.provider


def _tie_note(comparison: Comparison, best: Entry, view: TaskView) -> str:
    return (f"not significantly different from the best row ({_name(best, view)}, {best.reader}): "
            f"paired bootstrap on {comparison.n} questions, mean difference {comparison.mean_diff:+.4f}, "
            f"95% CI [{comparison.ci95[0]:+.4f}, {comparison.ci95[1]:+.4f}], p={comparison.p_value:.3f}")


def _metric_cells(view: TaskView, metric: str, with_significance: bool) -> list[str]:
    entries = view.entries
    values = [e.value(metric) for e in entries]
    best = best_row(values, metric)
    ties = ties_with_best(metric, values, [e.scores.get(metric, {}) for e in entries]) if with_significance else {}
    out = []
    for i, entry in enumerate(entries):
        agg = entry.aggregate.get(metric)
        if agg is None:
            out.append(cell("–", "", "num"))
            continue
        content = f'<span class="v">{esc(fmt(agg["value"], metric))}</span>{_ci(agg) if with_significance else ""}{judged_note(agg)}'
        cls, title = "num", ""
        if i == best and len(entries) > 1:
            cls += " best"
        if i in ties:
            title = _tie_note(ties[i], entries[best], view)
            content += f' <span class="tie" title="{esc(title)}">≈</span>'
            cls += " tied"
        out.append(cell(content, agg["value"], cls))
    return out


def _provider_cell(entry: Entry, view: TaskView) -> str:
    """The provider's name (linking to its row page), its variant label and its provenance marks."""
    label = view.labels.get(entry.row_id, "")
    content = f'<a href="runs/{esc(entry.row_id)}.html">{esc(entry.provider)}</a>'
    if label:
        content += f' <span class="variant">{esc(label)}</span>'
    return cell(content + provenance.marks(entry), f"{entry.provider} {label}".strip(), "provider")


def _reader_cell(entry: Entry) -> str:
    depth = "" if entry.reader_k is None else f' <span class="depth" title="evidence texts the reader sees">top {entry.reader_k}</span>'
    return cell(esc(entry.reader) + depth, entry.reader)


def _control_note(entry: Entry) -> str:
    """The row's smallest margin over a control on evidence ROUGE-L, as a small figure with its interval."""
    found = smallest_control_delta(entry)
    if found is None:
        return ""
    control, agg = found
    title = (f"smallest margin over a control: evidence ROUGE-L minus the {control} control's, "
             "paired bootstrap 95% interval; every control is in the full view")
    return (f'<span class="ctrl" title="{esc(title)}">−ctrl {esc(fmt(agg["value"], signed=True))}'
            f"{_ci(agg, signed=True)}</span>")


def headline_table(view: TaskView) -> str:
    """The compact view: provider, reader and the six headline figures, narrow enough for 1280 px."""
    columns = {metric: _metric_cells(view, metric, metric not in EFFICIENCY) for _, metric in HEADLINE}
    rows = []
    for i, entry in enumerate(view.entries):
        cells = [_provider_cell(entry, view), _reader_cell(entry)]
        for _, metric in HEADLINE:
            content = columns[metric][i]
            if metric == "evidence_rougeL" and (note := _control_note(entry)):
                content = content.replace("</td>", f"{note}</td>")
            cells.append(content)
        rows.append(f'<tr data-row="{esc(entry.row_id)}">{"".join(cells)}</tr>')
    return table(["provider", "reader", *(header for header, _ in HEADLINE)], rows, cls="sortable headline",
                 tid=f"headline-{view.slug}")


def task_table(view: TaskView) -> str:
    """The full view: every per-question metric, the controls, efficiency, provenance and the command."""
    quality = quality_metrics(view.entries)
    controls = [m for m in control_metrics(view.entries) if m not in quality]
    efficiency = efficiency_metrics(view.entries)
    columns = {m: _metric_cells(view, m, True) for m in [*quality, *controls]}
    columns.update({m: _metric_cells(view, m, False) for m in efficiency})
    headers = ["provider", "reader", *quality, *controls, *efficiency, "trained on corpus", "parameters trained",
               "base model", "accelerator", "questions", "date", "reproduce with"]
    rows = []
    for i, entry in enumerate(view.entries):
        failed = entry.counts.get("failed", 0)
        n_text = f"{entry.counts.get('questions', '')}" + (f" ({failed} failed)" if failed else "")
        meta = entry.metadata or {}
        trained_params = meta.get("parameters_trained")
        cells = [
            _provider_cell(entry, view),
            _reader_cell(entry),
            *(columns[m][i] for m in [*quality, *controls, *efficiency]),
            cell(esc(provenance.trained_text(entry)), provenance.trained_text(entry)),
            cell(esc("–" if trained_params is None else f"{trained_params:,}"), trained_params, "num"),
            cell(esc(provenance.base_model_text(entry)), provenance.base_model_text(entry)),
            cell(esc(entry.accelerator or provenance.NOT_RECORDED), entry.accelerator),
            cell(esc(n_text), entry.counts.get("questions"), "num"),
            cell(esc(entry.date[:10]), entry.date),
            cell(f"<code>{esc(command_text(entry.command))}</code>" if entry.command else "–", command_text(entry.command), "cmd"),
        ]
        rows.append(f'<tr data-row="{esc(entry.row_id)}">{"".join(cells)}</tr>')
    return table(headers, rows, cls="sortable full", tid=f"table-{view.slug}")


def ties_list(view: TaskView) -> str:
    quality = quality_metrics(view.entries)
    pairs = pairwise_ties(quality, [e.scores for e in view.entries])
    if not pairs:
        return "<p>Every pair of rows differs significantly on every quality metric (paired bootstrap, 95%).</p>"
    items = []
    for (i, j), found in sorted(pairs.items()):
        a, b = view.entries[i], view.entries[j]
        metrics = ", ".join(f"{esc(m)} (Δ {c.mean_diff:+.3f}, p={c.p_value:.2f})" for m, c in found)
        items.append(f"<li><b>{esc(_name(a, view))}</b> ({esc(a.reader)}) vs <b>{esc(_name(b, view))}</b> "
                     f"({esc(b.reader)}): {metrics}</li>")
    return ("<details><summary>Pairs of rows whose difference is not significant (paired bootstrap on per-question "
            f"scores, 95%)</summary><ul>{''.join(items)}</ul></details>")


def _reader_note(view: TaskView) -> str:
    if not view.reader_label:
        return ""
    others = (f" This task has rows of {view.reader_groups} readers; each reader has its own table, and rows of "
              "different readers are never ranked against each other.") if view.reader_groups > 1 else ""
    return f'<p class="reader-group">Reader: <b>{esc(view.reader_label)}</b>.{esc(others)}</p>'


def task_section(view: TaskView) -> str:
    first = view.entries[0]
    task_info = first.manifest.get("task") or {}
    splits = sorted({e.split for e in view.entries})
    plots = "".join(
        f'<figure><img src="{esc(p.path)}" alt="{esc(p.title)}"><figcaption>{esc(p.caption)}</figcaption></figure>'
        for p in view.plots
    )
    return (
        f'<section class="task" data-task="{esc(view.task)}" id="task-{esc(view.slug)}">'
        f"<h2>{esc(view.task)}</h2>"
        f"{_reader_note(view)}"
        f"<p>Task version {esc(task_info.get('version', '?'))}, split {esc(', '.join(splits))}, "
        f"{esc(task_info.get('passages', '?'))} passages; {len(view.entries)} row(s). "
        "Bold: the best value of a column. <span class=\"tie\">≈</span>: not significantly different from it "
        "(paired bootstrap over per-question scores, 95%; hover for the test). "
        "<span class=\"trained\">trained</span>: the provider's parameters were fitted to this task's corpus; "
        "<span class=\"nometa\">?</span>: published before provider metadata was recorded. "
        "Rows of one provider with different settings are labelled with the settings that differ. "
        f"{esc(latency_note(view.entries))}</p>"
        f'<div class="view-headline">{headline_table(view)}</div>'
        f'<div class="view-full">{task_table(view)}</div>'
        f"{ties_list(view)}<div class=\"plots\">{plots}</div></section>"
    )


def index_body(views: list[TaskView]) -> str:
    options = "".join(f'<option value="{esc(task)}">{esc(task)}</option>' for task in dict.fromkeys(v.task for v in views))
    rows = sum(len(v.entries) for v in views)
    intro = (
        "<h1>rag-bench leaderboard</h1>"
        f"<p>{rows} run(s) over {len({v.task for v in views})} task(s). Every provider is read by the reader named in its row; "
        "rows of different readers (reader kind, model, weights, prompt or decoding) are in separate tables; "
        "values are means over the questions of the split with 95% bootstrap intervals. "
        "Click a column header to sort, a provider to see its per-question records.</p>"
        f'<div class="controls"><label for="task-filter">Task </label><select id="task-filter">'
        f'<option value="">all tasks</option>{options}</select> '
        '<button type="button" id="view-toggle" aria-pressed="false">Show all metrics</button></div>'
    )
    if not views:
        return intro + '<p class="note">No finished runs were found.</p>'
    return intro + "".join(task_section(v) for v in views)

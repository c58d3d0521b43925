"""Render a multi-hop analysis result (``multihop_table``'s dict) as GitHub markdown and a PNG figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...summary import format_aggregate, markdown_table
from .multihop import ONE_DETAIL

DETAIL_HEADERS = {
    "answer_passage": "one: answer passage",
    "other_passage": "one: other passage",
    "answer_in_neither": "one: answer in neither",
    "answer_in_both": "one: answer in both",
}


def _name(row: dict[str, Any]) -> str:
    return f"**{row['label']}**" if row["focus"] else row["label"]


def _by_type(row: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for cell in row["cells"]:
        out.setdefault(cell["type"], {})[cell["k"]] = cell
    return out


def _scores_table(result: dict[str, Any]) -> str:
    ks = result["ks"]
    headers = ["provider", "type", "n"] + [f"{m}@{k}" for k in ks for m in ("hit", "all_gold")]
    rows = []
    for row in result["rows"]:
        for kind, cells in _by_type(row).items():
            first = cells[ks[0]]
            rows.append([_name(row), kind, first["n"]] + [format_aggregate(cells[k][m]) for k in ks for m in ("hit", "all_gold")])
    return markdown_table(headers, rows)


def _breakdown_table(result: dict[str, Any]) -> str:
    headers = ["provider", "type", "k", "n", "both", "one", "neither"] + [DETAIL_HEADERS[d] for d in ONE_DETAIL]
    rows = []
    for row in result["rows"]:
        for kind, cells in _by_type(row).items():
            for k, cell in cells.items():
                shares, detail = cell["shares"], cell["one_detail"]
                rows.append([_name(row), kind, k, cell["n"]] + [f"{shares[b]:.2f}" for b in ("both", "one", "neither")]
                            + [f"{detail[d]:.2f}" if detail else "-" for d in ONE_DETAIL])
    return markdown_table(headers, rows)


def _diff(item: dict[str, Any] | None) -> str:
    if item is None:
        return "-"
    low, high = item["ci95"]
    return f"{item['mean_diff']:+.2f} [{low:+.2f}, {high:+.2f}]" + ("*" if item["significant"] else "")


def _differences_table(result: dict[str, Any]) -> str:
    diffs = result["differences"]
    if not diffs:
        return f"No {result['focus']} row to compare (or no baseline of the same split and reader)."
    metrics = list(dict.fromkeys(d["metric"] for d in diffs))
    grouped: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for d in diffs:
        grouped.setdefault((d["focus"], d["baseline"], d["type"]), {})[d["metric"]] = d
    rows = [[f, b, kind, next(iter(items.values()))["n"]] + [_diff(items.get(m)) for m in metrics]
            for (f, b, kind), items in grouped.items()]
    return markdown_table(["focus", "baseline", "type", "n"] + [f"Δ {m}" for m in metrics], rows)


def render_markdown(result: dict[str, Any]) -> str:
    """Three GitHub-markdown tables: scores per provider x type, the failure breakdown, the paired differences."""
    ks = ", ".join(map(str, result["ks"]))
    parts = [
        f"## Multi-hop analysis: {result['task']} (k = {ks})",
        (f"Questions per type: {', '.join(f'{t} {n}' for t, n in result['types'].items())}. "
         f"Bold: {result['focus']}. Values are means over questions with 95% bootstrap intervals."),
    ]
    for note in result["dropped"]:
        parts.append(f"Note: {note['provider']} ({note['reader']}, {note['split']}) {note['config_hash']} from "
                     f"{note['date']} left out; the later {note['kept_config_hash']} is kept.")
    parts += [
        "### hit@k and all_gold@k", _scores_table(result),
        "### Where the hops are lost (shares of the questions)",
        ("both = all gold passages in the top k; one = some, not all; neither = none. "
         f"The `one:` columns split `one` by the hop found ({result['answer_bearing_rule']}); "
         "`-` where the source has no records."),
        _breakdown_table(result),
        f"### {result['focus']} minus each baseline (paired bootstrap, 95% interval; * = excludes 0)",
        _differences_table(result),
    ]
    return "\n\n".join(parts) + "\n"


def render_plot(result: dict[str, Any], path: Path, ks: Sequence[int] | None = None) -> Path:
    """Grouped bars of hit@k and all_gold@k per provider, one panel per question type, 95% interval bars."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    ks = list(ks or result["ks"][:2])
    types = list(result["types"])
    labels = [row["label"] for row in result["rows"]]
    series = [(k, m) for k in ks for m in ("hit", "all_gold")]
    width = 0.8 / len(series)
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, len(types), figsize=(4.2 * len(types), 4.4), sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, kind in zip(axes[0], types):
        for i, (k, metric) in enumerate(series):
            values, low, high = [], [], []
            for row in result["rows"]:
                cell = _by_type(row).get(kind, {}).get(k)
                agg = cell[metric] if cell else {"value": float("nan"), "ci95": None}
                ci = agg["ci95"] or (agg["value"], agg["value"])
                values.append(agg["value"])
                low.append(max(0.0, agg["value"] - ci[0]))
                high.append(max(0.0, ci[1] - agg["value"]))
            ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, yerr=[low, high], capsize=2,
                   color=colours[ks.index(k) % len(colours)], hatch="//" if metric == "all_gold" else None,
                   edgecolor="white" if metric == "all_gold" else None, label=f"{metric}@{k}")
        ax.set_title(f"{kind} (n={result['types'][kind]})")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("share of questions")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(series), fontsize=8)
    fig.suptitle(f"{result['task']}: any gold passage (hit) vs both hops (all_gold) in the top k")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

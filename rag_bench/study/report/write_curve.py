"""docs/RESULTS.md section: new documents written into each provider (``rag-bench write-curve``).

Read from the result files under ``<report folder>/benchmarks/write_curves/``
(one JSON per task and provider). Per task: a table of every provider's write
(one row per step count for a provider whose write optimises) with the new
passages' figures beside the same provider prepared with them from the
start, the old passages' retention and the cost per document; the write
curve (new-passage recall@5 and old-passage retention against optimisation
steps); and where batches were written one after another, the forgetting
curve (each set's recall@5 after each batch).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ...errors import RagBenchError
from ...summary import format_aggregate, markdown_table

#: Where the section finds its results, relative to the report's folder (docs/ for docs/RESULTS.md).
WRITE_CURVES = Path("benchmarks") / "write_curves"
FIGURES = "write-curves"
HEADLINE = "recall@5"
TITLE = "## New documents: the write protocol"


def load_results(folder: Path) -> list[dict[str, Any]]:
    """Every write-curve result in `folder`, by task then provider; an unreadable file is one clear error."""
    results = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RagBenchError(f"{path}: unreadable ({exc}); re-run the command that made it or remove the file") from None
        if isinstance(data, dict) and "held_out" in data and "provider" in data:
            results.append({**data, "_file": path.name})
    return sorted(results, key=lambda r: (r.get("task", ""), r["provider"], r["_file"]))


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _write_label(result: dict[str, Any], point: dict[str, Any]) -> str:
    return "all at once" + (f", {point['steps']} steps" if point.get("steps") is not None else "")


def _label(result: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The provider's name, with its result file's settings hash where one task has two of its rows."""
    twins = [r for r in results if r.get("task") == result.get("task") and r["provider"] == result["provider"]]
    suffix = result["_file"].rsplit("__", 1)[-1].removesuffix(".json") if len(twins) > 1 else ""
    return result["provider"] + (f" {suffix}" if suffix and suffix != result["provider"] else "")


def write_table(results: list[dict[str, Any]]) -> str:
    """One row per provider and write: new-passage figures, the reference, retention, cost."""
    headers = ["provider", "write", "new recall@1", f"new {HEADLINE}", "new evidence ROUGE-L", "new answer_recall@5",
               f"prepared with them: {HEADLINE}", f"written minus prepared-with ({HEADLINE}, paired)",
               f"old {HEADLINE} retention (after / before)", "s per doc", "bytes per doc"]
    rows = []
    for result in results:
        label = _label(result, results)
        if not result.get("can_write"):
            rows.append([label, "cannot write", *["-"] * (len(headers) - 2)])
            continue
        reference = result["reference"]["new"]
        for point in result["write_curve"]:
            new, cost = point["new"], point["cost"]
            rows.append([label, _write_label(result, point), format_aggregate(new.get("recall@1")),
                         format_aggregate(new.get(HEADLINE)), format_aggregate(new.get("evidence_rougeL")),
                         format_aggregate(new.get("answer_recall@5")), format_aggregate(reference.get(HEADLINE)),
                         format_aggregate(point["gap"].get(HEADLINE)), _ratio(point["retention"].get(HEADLINE)),
                         f"{cost['seconds_per_doc']:.4f}", f"{cost['bytes_per_doc']:,.0f}"])
    return markdown_table(headers, rows)


def forgetting_table(results: list[dict[str, Any]]) -> str:
    """Per provider and batch written: the original passages' retention and each earlier batch's."""
    curves = [r for r in results if r.get("forgetting")]
    batches = max(r["forgetting"]["batches"] for r in curves)
    headers = ["provider", "after batch", f"original: {HEADLINE} (retention)",
               *(f"batch {j}: {HEADLINE} (retention)" for j in range(1, batches + 1)), "s per doc"]
    rows = []
    for result in curves:
        for point in result["forgetting"]["points"]:
            sets = {s["name"]: s for s in point["sets"]}
            cells = []
            for name in ["original", *(f"batch {j}" for j in range(1, batches + 1))]:
                entry = sets.get(name)
                cells.append("-" if entry is None else f"{format_aggregate(entry['figures'].get(HEADLINE), with_ci=False)} "
                             f"({_ratio(entry['retention'].get(HEADLINE))})")
            rows.append([_label(result, results), point["after_batch"], *cells, f"{point['cost']['seconds_per_doc']:.4f}"])
    return markdown_table(headers, rows)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=110, format="png")
    tmp.replace(path)


def _value(agg: dict[str, Any] | None) -> float:
    value = (agg or {}).get("value")
    return float("nan") if value is None else float(value)


def plot_write_curves(task: str, results: list[dict[str, Any]], path: Path) -> None:
    """Left: new-passage recall@5 against z_new steps (a one-write provider is a flat line), each provider's
    prepared-with-them figure dotted; right: old-passage retention. Symlog x, so 0 steps shows."""
    plt = _pyplot()
    writable = [r for r in results if r.get("can_write")]
    steps = sorted({p["steps"] for r in writable for p in r["write_curve"] if p["steps"] is not None}) or [0]
    span = (min(steps), max(max(steps), 1))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for result in writable:
        points = result["write_curve"]
        label = _label(result, results)
        if result.get("write_takes_steps"):
            xs = [p["steps"] for p in points]
            new = [_value(p["new"].get(HEADLINE)) for p in points]
            kept = [p["retention"].get(HEADLINE) for p in points]
        else:
            xs = list(span)
            new = [_value(points[0]["new"].get(HEADLINE))] * 2
            kept = [points[0]["retention"].get(HEADLINE)] * 2
        line, = left.plot(xs, new, "-o" if result.get("write_takes_steps") else "-", label=f"{label} (written)")
        left.axhline(_value(result["reference"]["new"].get(HEADLINE)), color=line.get_color(), linestyle=":",
                     linewidth=1, label=f"{label} (prepared with them)")
        right.plot(xs, [math.nan if k is None else k for k in kept], "-o" if result.get("write_takes_steps") else "-",
                   color=line.get_color(), label=label)
    for ax, ylabel, title in ((left, f"new questions: {HEADLINE}", "new passages"),
                              (right, f"old questions: {HEADLINE} after / before", "old passages' retention")):
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(span[0], span[1] * 1.05)
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.set_xlabel("optimisation steps per new passage (one write where none)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{task}: {title}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_forgetting(task: str, results: list[dict[str, Any]], path: Path) -> None:
    """One panel per provider: each set's recall@5 (the original passages, then each batch from when it is written)
    against the number of batches written."""
    plt = _pyplot()
    curves = [r for r in results if r.get("forgetting")]
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.8), squeeze=False)
    for ax, result in zip(axes[0], curves):
        series: dict[str, tuple[list[int], list[float]]] = {}
        for point in result["forgetting"]["points"]:
            for entry in point["sets"]:
                xs, ys = series.setdefault(entry["name"], ([], []))
                xs.append(point["after_batch"])
                ys.append(_value(entry["figures"].get(HEADLINE)))
        for name, (xs, ys) in series.items():
            ax.plot(xs, ys, "-o", label=name, linewidth=2 if name == "original" else 1)
        ax.set_xticks(range(1, result["forgetting"]["batches"] + 1))
        ax.set_xlabel("batches written")
        ax.set_ylabel(HEADLINE)
        ax.set_ylim(0, 1.05)
        steps = result["forgetting"].get("steps")
        ax.set_title(f"{_label(result, results)}" + (f" ({steps} steps)" if steps is not None else ""), fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{task}: forgetting curve")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _code(argv: list[str] | None) -> str:
    return f"`{' '.join(argv)}`" if argv else "(command not recorded)"


def write_curves_section(figures: Path, out_md: Path, folder: Path | None = None) -> str:
    """The section: per task, the write table, the write-curve figure, the forgetting table and figure, and the
    command of each result. `folder` holds the results (default: `WRITE_CURVES` beside the report); figures are
    drawn into ``figures/write-curves/``."""
    folder = out_md.parent / WRITE_CURVES if folder is None else folder
    results = load_results(folder)
    if not results:
        return (f"{TITLE}\n\nNo write curve found in {folder}; run "
                "`rag-bench write-curve --task nq_5k --provider bm25` (see docs/PLUGINS.md, the write hook).\n")
    parts = [TITLE, "",
             "Held-out dev passages are left out of the corpus at preparation (a derived task with its own cache), "
             "then written into the prepared provider with its `write` hook. New questions are the dev questions "
             "those passages answer, old questions the other dev questions; the test split is never used. "
             "\"Prepared with them\" is the same provider prepared on the whole task; retention is an old-question "
             "figure after the write over the same figure before it. Means with 95% bootstrap intervals; the "
             "difference to the provider prepared with them is paired over the same questions. Cost: wall-clock "
             "seconds of the write and growth of the counted footprint, per written passage.", ""]
    draw = figures / FIGURES
    for task in dict.fromkeys(r.get("task", "?") for r in results):
        group = [r for r in results if r.get("task") == task]
        held = next((r["held_out"] for r in group if r.get("can_write")), group[0]["held_out"])
        parts += [f"### {task}: {held['passages']} held-out dev passages ({held['new_questions']} new questions), "
                  f"retention on {held['old_questions']} old dev questions", "", write_table(group)]
        if any(r.get("can_write") for r in group):
            plot_write_curves(task, group, draw / f"write-{task}.png")
            parts.append(f"![write curve {task}]({(draw / f'write-{task}.png').relative_to(out_md.parent).as_posix()})\n")
        if any(r.get("forgetting") for r in group):
            batches = max(r["forgetting"]["batches"] for r in group if r.get("forgetting"))
            parts += [f"Forgetting curve: the held-out passages written in {batches} batches one after another "
                      f"(a step-optimising write at its largest step count); after each batch, {HEADLINE} of every "
                      "set written so far, and in brackets its retention (now over when it was last new: before any "
                      "write for the original passages, right after its own write for a batch).", "",
                      forgetting_table(group)]
            plot_forgetting(task, group, draw / f"forgetting-{task}.png")
            parts.append(f"![forgetting curve {task}]"
                         f"({(draw / f'forgetting-{task}.png').relative_to(out_md.parent).as_posix()})\n")
        parts += ["Commands:", ""] + [f"- {_label(r, group)}: {_code(r.get('command'))}" for r in group] + [""]
    return "\n".join(parts)

"""The write-path curve: for held-out passages added with z-only optimisation, new-passage routing recall and
evidence ROUGE-L, and retention on the old passages, as a function of the number of optimisation steps."""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Callable, Sequence

from rag_bench.api import Passage, Question, RagBenchError, mean_with_ci, params_to_dict

from .config import WRITE_LR
from .evaluation import evidence_scores, fit_or_load, holdout_split, routing_hits
from .write import WritePoint, add_passages, appended

DEFAULT_CURVE_STEPS = (0, 10, 25, 50, 100, 200)
#: Old questions whose generated evidence is scored at each point (generation is the costly part).
OLD_EVIDENCE_LIMIT = 64



def metric_names(k: int) -> list[str]:
    """The scored columns of a point, in display order."""
    return [f"new_recall@{k}", "new_evidence_rougeL", f"old_recall@{k}", "old_evidence_rougeL"]


def _with_ci(name: str, values: Sequence[float]) -> dict:
    agg = mean_with_ci(values)
    return {name: agg.value, f"{name}_ci95": list(agg.ci95) if agg.ci95 else None}


def adapt_curve(corpus: Sequence[Passage], train: Sequence[Question], test: Sequence[Question], params, holdout: int,
                folder: Path, steps: Sequence[int] = DEFAULT_CURVE_STEPS, k: int = 5, lr: float = WRITE_LR,
                old_limit: int = 200, old_evidence_limit: int = OLD_EVIDENCE_LIMIT,
                on_point: Callable[[dict], None] | None = None) -> dict:
    """Train (or load from `folder`) a memory without `holdout` passages, add them in one Adam run of max(steps) steps
    and score new and old questions at every requested step count; a JSON-ready dict with one entry per point.
    `on_point` sees each point as soon as it is scored (progress)."""
    steps = sorted(set(steps))
    if not steps or steps[0] < 0:
        raise RagBenchError("adapt-curve: give at least one step count, all >= 0")
    if k < 1:
        raise RagBenchError("adapt-curve: -k must be at least 1")
    split = holdout_split(corpus, test, holdout, old_limit)
    if not split.held:
        raise RagBenchError("adapt-curve: no test question has a gold passage in the corpus; nothing to hold out")
    system, trained = fit_or_load(params, split.kept, train, folder)
    old_evidence = split.old_questions[:old_evidence_limit]
    names = metric_names(k)
    before = mean_with_ci(routing_hits(system, split.old_questions, k))
    points: list[dict] = []

    def score(point: WritePoint) -> None:
        with appended(system, split.held, point.z_new):
            values = [routing_hits(system, split.new_questions, k), evidence_scores(system, split.new_questions),
                      routing_hits(system, split.old_questions, k), evidence_scores(system, old_evidence)]
        row = {"steps": point.steps, "new_loss": point.loss, "new_gen_loss": point.gen_loss, "seconds": point.seconds}
        for name, scores in zip(names, values):
            row.update(_with_ci(name, scores))
        points.append(row)
        if on_point is not None:
            on_point(row)

    start = time.perf_counter()
    add_passages(system, split.held, steps=steps[-1], lr=lr, seed=params.seed, checkpoints=steps, on_checkpoint=score)
    return {
        "holdout_passages": len(split.held), "new_questions": len(split.new_questions),
        "old_questions": len(split.old_questions), "old_evidence_questions": len(old_evidence),
        "k": k, "lr": lr, **trained, "settings": params_to_dict(params), "points": points,
        f"old_recall@{k}_before_add": before.value, f"old_recall@{k}_before_add_ci95": list(before.ci95) if before.ci95 else None,
        "curve_s": time.perf_counter() - start,
    }


def csv_columns(k: int) -> list[str]:
    """curve.csv's header: steps, each metric with its 95% interval bounds, the write losses and seconds."""
    metrics = [col for name in metric_names(k) for col in (name, f"{name}_ci95_lo", f"{name}_ci95_hi")]
    return ["steps", *metrics, "new_loss", "new_gen_loss", "seconds"]


def curve_csv(curve: dict) -> str:
    """One row per point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns(curve["k"]))
    for point in curve["points"]:
        row = [point["steps"]]
        for name in metric_names(curve["k"]):
            row += [point[name], *(point[f"{name}_ci95"] or ("", ""))]
        writer.writerow(row + [point["new_loss"], point["new_gen_loss"], point["seconds"]])
    return out.getvalue()


def curve_rows(curve: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the terminal table: each metric as `value [lo, hi]`."""
    names = metric_names(curve["k"])

    def cell(point: dict, name: str) -> str:
        ci = point[f"{name}_ci95"]
        return f"{point[name]:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")

    rows = [[str(p["steps"]), *(cell(p, n) for n in names), f"{p['new_loss']:.3f}", f"{p['seconds']:.1f}"]
            for p in curve["points"]]
    return ["steps", *names, "new_loss", "seconds"], rows


def plot_curve(curve: dict, path: Path) -> None:
    """Every metric against the step count (symlog x, so 0 shows), with 95% interval bands; PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    k = curve["k"]
    xs = [p["steps"] for p in curve["points"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, style in zip(metric_names(k), ("-o", "-s", "--o", "--s")):
        ys = [p[name] for p in curve["points"]]
        line, = ax.plot(xs, ys, style, label=name)
        bands = [p[f"{name}_ci95"] for p in curve["points"]]
        if all(bands):
            ax.fill_between(xs, [b[0] for b in bands], [b[1] for b in bands], color=line.get_color(), alpha=0.15)
    before = curve.get(f"old_recall@{k}_before_add")
    if before is not None and not math.isnan(before):
        ax.axhline(before, color="grey", linewidth=0.8, linestyle=":", label=f"old_recall@{k} before add")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, max(xs) * 1.05 or 1)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("z_new optimisation steps (θ frozen)")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1)
    ax.set_title(f"{curve.get('task', '')}: {curve['holdout_passages']} passages added; write-path curve")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)

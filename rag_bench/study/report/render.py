"""docs/RESULTS.md: the research plan's four phases, each figure with the command that made it and its interval.

Every number here is read from a run folder, a sweep summary, a write-path
curve or recomputed from run records (the multi-hop table); nothing is typed in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

from ..analysis.multihop import FOCUS
from ...leaderboard.collect import Entry
from ...leaderboard.latency import latency_note
from ...leaderboard.readers import group_key
from ...leaderboard.significance import lower_is_better, paired_bootstrap
from ...manifest import git_revision, now
from ...summary import format_aggregate, markdown_table
from ...sweep.summary import axes_of, grid_text, markdown as sweep_table, plot_name
from .answers import answers_section
from .corpus_axis import corpus_axis_section
from .equal_bytes import cut_evidence, equal_bytes_section
from .paired import paired_difference
from .phase2 import default_line
from .sources import ReportInputs
from .write_curve import write_curves_section

NO_RETRIEVAL = "no_retrieval"
#: (column header, metric) of the comparison table the research plan promises.
COMPARISON = (("EM", "em"), ("F1", "f1"), ("recall@5", "recall@5"), ("all_gold@5", "all_gold@5"),
              ("evidence ROUGE-L", "evidence_rougeL"), ("latency ms/question (p50)", "latency_p50_ms"),
              ("storage MB per 1K passages", "footprint_mb_per_1k"))
POC_TARGET = 0.3  # phase 1: evidence ROUGE-L above this
EM_GAP = 0.05  # phase 3: EM within 5 points of the best RAG baseline
MULTIHOP_TASK = "hotpotqa_5k"


def code(argv: Sequence[str] | None) -> str:
    return f"`{' '.join(argv)}`" if argv else "(command not recorded)"


def verdict(agg: dict[str, Any] | None, target: float) -> str:
    """met / not met / inconclusive from the 95% interval against a target the value must exceed."""
    if not agg or agg.get("value") is None:
        return "not measured"
    low, high = agg.get("ci95") or (agg["value"], agg["value"])
    return "met" if low > target else "not met" if high < target else "inconclusive (interval spans the target)"


def _label(entry: Entry, entries: list[Entry]) -> str:
    settings = (entry.manifest.get("provider") or {}).get("settings") or {}
    label = entry.provider + "".join(f" ({key}={settings[key]})" for key in ("base", "evidence_bytes", "key_init")
                                     if settings.get(key) is not None)
    twins = [e for e in entries if e.task == entry.task and e.provider == entry.provider and e.reader == entry.reader]
    return label + (f" {entry.config_hash[:6]}" if len(twins) > 1 else "")


def _by_task(entries: list[Entry]) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for entry in entries:
        out.setdefault(entry.task, []).append(entry)
    return out


def _baselines(entries: list[Entry]) -> list[Entry]:
    """Whole-passage baselines: equal-bytes rows (evidence cut to B bytes) have their own section."""
    return [e for e in entries if e.provider not in (FOCUS, NO_RETRIEVAL) and not cut_evidence(e)]


def _best(items: list[Any], metric: str, value: Callable[[Any], float | None]) -> Any | None:
    """The item with the best `value` on `metric` (lowest where less is better); None when none has a value."""
    scored = [item for item in items if value(item) is not None]
    if not scored:
        return None
    pick = min if lower_is_better(metric) else max
    return pick(scored, key=value)


def _best_entry(entries: list[Entry], metric: str) -> Entry | None:
    return _best(entries, metric, lambda e: e.value(metric))


def _figure(source: Path, figures: Path, name: str, out_md: Path) -> str:
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, figures / name)
    rel = (figures / name).relative_to(out_md.parent)
    return f"![{name}]({rel.as_posix()})"


def scope(inputs: ReportInputs) -> str:
    """What ran where, with which reader and base model: read from the manifests."""
    machines: dict[str, int] = {}
    cells = [Path(c["run"]) / "manifest.json" for _, summary in inputs.sweeps for c in summary["cells"] if c["run"]]
    others = [curve.get("software") or {} for _, curve in inputs.curves]
    others += [json.loads(path.read_text(encoding="utf-8")).get("software") or {} for path in cells if path.is_file()]
    for sw in [(e.manifest.get("software") or {}) for e in inputs.entries] + others:
        key = f"{sw.get('platform', '?')}, accelerator: {sw.get('accelerator', 'not recorded')}"
        machines[key] = machines.get(key, 0) + 1
    lines = ["## Scope: what ran where", ""]
    lines += [f"- Machine: {machine} ({count} result(s): runs, sweep cells, curves)." for machine, count in machines.items()]
    if any("not recorded" in machine for machine in machines):
        lines.append("  Results with the accelerator not recorded were made before rag-bench recorded it; the platform "
                     "string tells which machine they share with the results that do record it.")
    readers = sorted({e.reader for e in inputs.entries})
    if readers == ["none"]:
        lines.append("- Reader: **none** for every row, so **EM and F1 are not measured**: every quality figure below "
                     "scores the evidence itself. A reader needs an OpenAI-compatible endpoint or a pretrained generative "
                     "model, and the offline machine that made these figures has neither. Run the same commands with "
                     "`--reader openai -R base_url=... -R model=...` to fill them.")
    elif readers:
        lines.append(f"- Readers: {', '.join(readers)}.")
    bases = sorted({str(((e.manifest.get('provider') or {}).get('settings') or {}).get('base'))
                    for e in inputs.entries if e.provider == FOCUS})
    if bases:
        lines.append(f"- llm_memory base: {', '.join(bases)}.")
    if "minilm" in bases:
        lines.append("  `minilm` is the offline all-MiniLM-L6-v2 loaded through `from_pretrained` as a causal LM "
                     "(BERT-as-decoder) with LoRA: the research configuration's code path on a pretrained model that fits "
                     "this CPU. It folds a pretrained dense encoder into the model, so its routing starts where a dense "
                     "retriever with that encoder is (docs/LLM_MEMORY.md).")
    if "tiny" in bases:
        lines.append("  `tiny` is a 4-layer decoder built from a config (MiniLM's vocabulary and embeddings), trained "
                     "from scratch on CPU. It tests the mechanism and the harness, not the research hypothesis, which "
                     "needs a pretrained base (e.g. an 8B model in 4-bit with LoRA) on a GPU: "
                     "`rag-bench run --provider llm_memory --task nq_5k -P base=<HF id> -P quantization=4bit`.")
    return "\n".join(lines) + "\n"


def comparison(inputs: ReportInputs) -> str:
    """Phase 3: per task, one row per provider: EM, F1, recall@5, evidence ROUGE-L, latency, storage (95% intervals)."""
    parts = ["## Phase 3: comparison with the retrieval baselines", "",
             "Means over the split's questions with 95% bootstrap intervals (latency: p50 per question; storage: the "
             "provider's state per 1,000 passages, one measurement). `-` = not measured or not applicable."]
    for task, entries in _by_task(inputs.entries).items():
        columns = [(h, m) for h, m in COMPARISON if any(e.value(m) is not None for e in entries) or m in ("em", "f1")]
        rows = [[_label(e, entries), e.reader, e.counts.get("questions", "-"),
                 *(format_aggregate(e.aggregate.get(m), with_ci=not m.startswith("footprint")) for _, m in columns)]
                for e in entries]
        parts += ["", f"### {task} ({entries[0].split} split)", "",
                  markdown_table(["provider", "reader", "n", *(h for h, _ in columns)], rows), "", latency_note(entries)]
        focus = [e for e in entries if e.provider == FOCUS]
        best = _best_entry(_baselines(entries), "recall@5")
        if focus and best:
            parts.append(f"{FOCUS} minus the best baseline on recall@5 ({best.provider}), paired bootstrap: "
                         f"recall@5 {paired_difference(focus[0], best, 'recall@5')}, "
                         f"evidence ROUGE-L {paired_difference(focus[0], best, 'evidence_rougeL')}.\n")
        for entry in focus:
            parts.append(controls(entry, entries))
        parts += ["Commands:", ""] + [f"- {_label(e, entries)}: {code(e.command)}" for e in entries] + [""]
    return "\n".join(parts)


CONTROL_METRICS = ("evidence_rougeL", "answer_recall@5")
CONTROL_MARGIN = 0.10  # phase 1: the evidence must beat every control by this much


def control_names(entry: Entry) -> list[str]:
    """The controls a run was scored against (`control.<name>.<metric>` aggregates), in a stable order."""
    return sorted({key.split(".")[1] for key in entry.aggregate if key.startswith("control.")})


def controls(entry: Entry, entries: list[Entry]) -> str:
    """The same model's evidence against its controls: each control's score and the paired difference
    (the mean of per-question differences with its 95% bootstrap interval)."""
    names = control_names(entry)
    if not names:
        return (f"{_label(entry, entries)} carries no controls (published before they existed): its evidence figures "
                "are not results until it is re-run.\n")
    metrics = [m for m in CONTROL_METRICS if any(f"control.{c}.{m}" in entry.aggregate for c in names)]
    rows = [[c, *(cell for m in metrics for cell in (format_aggregate(entry.aggregate.get(f"control.{c}.{m}")),
                                                     format_aggregate(entry.aggregate.get(f"delta.{c}.{m}"))))]
            for c in names]
    n = {c: (entry.aggregate.get(f"control.{c}.evidence_rougeL") or {}).get("n") for c in names}
    headers = ["control", *(h for m in metrics for h in (m, f"{FOCUS} minus control"))]
    return (f"Controls of {_label(entry, entries)} (the same trained model; questions scored: "
            + ", ".join(f"{c} {n[c]}" for c in names) + "):\n\n" + markdown_table(headers, rows))


def _cell_scores(cell: dict[str, Any], metric: str) -> dict[str, float]:
    path = Path(cell["run"] or "") / "metrics.json"
    if not path.is_file():
        return {}
    per_question = json.loads(path.read_text(encoding="utf-8")).get("per_question") or {}
    return {qid: values[metric] for qid, values in per_question.items() if metric in values}


def _separable(best: dict[str, Any], other: dict[str, Any], metric: str) -> bool:
    """Whether the best sweep cell beats `other` on `metric` by a paired bootstrap (True when it cannot be tested)."""
    result = paired_bootstrap(_cell_scores(best, metric), _cell_scores(other, metric))
    return result is None or result.significant


#: Controls that are not floors the evidence must clear by the margin: the text store is the lookup table the memory
#: is compared with whatever the sign, the query swap is a share of unchanged texts (issue 27).
NOT_FLOORS = ("text_store", "query_swap")
QUERY_SWAP_MAX = 0.5


def _evidence_rows(entries: list[Entry]) -> list[Entry]:
    """One row per provider configuration: a reader does not change the evidence, so a configuration scored with
    several readers is shown once (its reader-`none` row where there is one)."""
    def settings(entry: Entry) -> str:
        return json.dumps((entry.manifest.get("provider") or {}).get("settings") or {}, sort_keys=True)

    chosen: dict[str, Entry] = {}
    for entry in sorted(entries, key=lambda e: e.reader != "none"):
        chosen.setdefault(settings(entry), entry)
    return list(chosen.values())


def plan_status(inputs: ReportInputs, multihop: dict[str, Any] | None) -> str:
    """The four phases, their targets and where each stands, as one table."""
    rows = []
    for entries in _by_task(inputs.entries).values():
        for focus in _evidence_rows([e for e in entries if e.provider == FOCUS]):
            which = f"{focus.task} ({_label(focus, entries)})"
            agg = focus.aggregate.get("evidence_rougeL")
            rows.append(["1 proof of concept", f"evidence ROUGE-L > {POC_TARGET}", f"{which}: {format_aggregate(agg)}",
                         verdict(agg, POC_TARGET)])
            names = [c for c in control_names(focus) if c not in NOT_FLOORS]
            deltas = {c: focus.aggregate.get(f"delta.{c}.evidence_rougeL") for c in names}
            worst = min(names, key=lambda c: (deltas[c] or {}).get("value", float("inf"))) if names else None
            rows.append(["1 proof of concept", f"evidence ROUGE-L > every control + {CONTROL_MARGIN}",
                         f"{which}: minus {worst} {format_aggregate(deltas[worst])}" if worst else f"{which}: no controls",
                         verdict(deltas[worst], CONTROL_MARGIN) if worst else "not measured (re-run with controls)"])
            store = focus.aggregate.get("delta.text_store.evidence_rougeL")
            rows.append(["1 proof of concept", "evidence ROUGE-L minus the text store (reported whatever its sign)",
                         f"{which}: {format_aggregate(store)}" if store else f"{which}: not measured",
                         "measured" if store else "not measured (re-run with controls)"])
            unchanged = focus.aggregate.get("control.query_swap.unchanged")
            rows.append(["1 proof of concept", f"texts unchanged under a question swap <= {QUERY_SWAP_MAX}",
                         f"{which}: {format_aggregate(unchanged)}" if unchanged else f"{which}: not measured",
                         (("met" if unchanged["value"] <= QUERY_SWAP_MAX else "not met") if unchanged
                          else "not measured (re-run with controls)")])
    for _, summary in inputs.sweeps:
        metric = summary["metrics"][0]
        done = [c for c in summary["cells"] if (c["metrics"].get(metric) or {}).get("value") is not None]
        best = _best(done, metric, lambda c: c["metrics"][metric]["value"])
        ties = [c["name"] for c in done if best and c is not best and not _separable(best, c, metric)]
        status = f"{len(done)}/{len(summary['cells'])} cells measured"
        if ties:
            status += f"; not significantly better than {', '.join(ties)} (paired bootstrap)"
        rows.append(["2 ablations", f"best {' x '.join(axes_of(summary))} ({summary['sweep']})",
                     f"{best['name']}: {metric} {format_aggregate(best['metrics'][metric])}" if best else "no finished cell",
                     status])
    for task, entries in _by_task(inputs.entries).items():
        rows += em_gap_rows(task, entries)
    if multihop:
        for row in multihop["rows"]:
            if row["focus"]:
                cell = next(c for c in row["cells"] if c["type"] == "all" and c["k"] == multihop["ks"][0])
                rows.append(["4 multi-hop", f"all_gold@{cell['k']} on {multihop['task']}",
                             format_aggregate(cell["all_gold"]), "measured; see the multi-hop section"])
    rows = [list(row) for row in dict.fromkeys(map(tuple, rows))]  # one configuration read by two readers: once
    return "## The research plan at a glance\n\n" + markdown_table(["phase", "target", "measured", "status"], rows)


#: The RAG baselines phase 3 sets llm_memory beside, each in its best row under the same reader.
EM_BASELINES = ("dense", "bm25")


def em_gap_rows(task: str, entries: list[Entry]) -> list[list[str]]:
    """Phase 3 for one task: under each reader that answers, llm_memory's EM minus each RAG baseline's, paired over
    the same questions. Met when the interval's low end is above -EM_GAP, not met when its high end is below it.
    Rows of different readers are never compared (their EM differs for reasons that are not the evidence)."""
    target = f"EM within {EM_GAP * 100:.0f} points of RAG"
    focus = [e for e in entries if e.provider == FOCUS]
    if not focus:
        return []
    rows = []
    for group in sorted({group_key(e) for e in entries}):
        members = [e for e in entries if group_key(e) == group and e.value("em") is not None]
        mine = _best_entry([e for e in members if e.provider == FOCUS], "em")
        if mine is None:
            continue
        for name in EM_BASELINES:
            other = _best_entry([e for e in _baselines(members) if e.provider == name], "em")
            result = paired_bootstrap(mine.scores.get("em", {}), other.scores.get("em", {})) if other else None
            if result is None:
                rows.append(["3 comparison", target, f"{task}, reader {mine.reader}: no {name} row to pair with",
                             "not measured"])
                continue
            low, high = result.ci95
            status = "met" if low > -EM_GAP else "not met" if high < -EM_GAP else "inconclusive (interval spans the target)"
            rows.append(["3 comparison", target,
                         f"{task}, reader {mine.reader}: llm_memory {mine.value('em'):.3f} minus {_label(other, entries)} "
                         f"{other.value('em'):.3f} = {result.mean_diff:+.3f} [{low:+.3f}, {high:+.3f}] (paired)", status])
    if not rows:
        rows.append(["3 comparison", target, f"{task}: EM not measured", "needs a reader (e.g. --reader extractive)"])
    return rows


def sweeps(inputs: ReportInputs, figures: Path, out_md: Path) -> str:
    """Phase 2: each sweep's table (value [95% interval] per cell) and its heat-maps."""
    if not inputs.sweeps:
        return "## Phase 2: ablations\n\nNo sweep found; run `rag-bench sweep SPEC.yaml` (see docs/SWEEPS.md).\n"
    parts = ["## Phase 2: ablations", ""]
    for folder, summary in inputs.sweeps:
        fixed = ", ".join(f"{k}={v}" for k, v in summary["params"].items()) or "defaults"
        slice_ = f"first {summary['limit']} questions of" if summary.get("limit") else "all of"
        parts += [f"### {summary['sweep']}: {summary['provider']} on {summary.get('task_name', summary['task'])}", "",
                  f"Grid {grid_text(summary)}; fixed {fixed}; "
                  f"{slice_} the {summary.get('split') or 'default'} split; reader {summary['reader']}; "
                  f"cells ran {summary.get('max_parallel', 1)} at a time, so latencies share the machine.", "",
                  f"Command: {code(summary.get('command'))}", "", sweep_table(summary), "", default_line(summary), ""]
        for metric in summary["metrics"]:
            heat = folder / plot_name(metric)
            if heat.is_file():
                parts.append(_figure(heat, figures / "sweeps" / summary["sweep"], heat.name, out_md))
        failed = [c for c in summary["cells"] if c["status"] == "failed"]
        parts += [f"- failed: {c['name']}: {c['error']}" for c in failed] + [""]
    return "\n".join(parts)


CURVE_ORDER = ("new_recall", "new_evidence", "old_recall", "old_evidence", "new_loss", "new_gen_loss", "seconds")


def _curve_columns(points: list[dict[str, Any]]) -> list[str]:
    """The points' measures, new-passage quality first, then retention, then the optimisation's own figures."""
    keys = [k for k in points[0] if k != "steps" and not k.endswith("_ci95")]
    rank = lambda key: next((i for i, prefix in enumerate(CURVE_ORDER) if key.startswith(prefix)), len(CURVE_ORDER))  # noqa: E731
    return sorted(keys, key=lambda key: (rank(key), key))


def curves(inputs: ReportInputs, figures: Path, out_md: Path) -> str:
    """llm_memory's own adapt curves (`memory adapt-curve`), where any were run: new-passage quality and old-passage
    retention against z-only optimisation steps. Empty without one: every provider's writing is reported by the one
    write protocol (`write-curve`, the next section)."""
    if not inputs.curves:
        return ""
    parts = ["## Write path: adding passages with z-only optimisation", ""]
    for folder, curve in inputs.curves:
        points = curve["points"]
        columns = _curve_columns(points)
        rows = [[p["steps"], *(format_aggregate({"value": p[c], "ci95": p.get(f"{c}_ci95")}) for c in columns)]
                for p in points]
        parts += [f"### {curve.get('task', folder.name)}: {curve.get('holdout_passages', '?')} held-out passages "
                  f"({curve.get('new_questions', '?')} questions), retention on {curve.get('old_questions', '?')} old questions",
                  "", f"Command: {code(curve.get('command'))}", "",
                  f"The memory was trained without the held-out passages ({curve.get('train_steps', '?')} steps, "
                  f"{curve.get('train_s', 0):.0f} s{'; loaded from an earlier training of the same settings' if curve.get('memory_reused') else ''}); "
                  "each point is the same z-only optimisation scored after that many steps.", "",
                  markdown_table(["steps", *columns], rows)]
        plot = folder / "curve.png"
        if plot.is_file():
            parts.append(_figure(plot, figures / "adapt-curves", f"{folder.name}.png", out_md))
        parts.append("")
    return "\n".join(parts)


def multihop_section(multihop: dict[str, Any] | None, sources: list[Path], figures: Path, out_md: Path) -> str:
    if multihop is None:
        return f"## Phase 4: multi-hop\n\nNo full run of {MULTIHOP_TASK} found.\n"
    from ..analysis.multihop_render import render_markdown, render_plot

    plot = render_plot(multihop, figures / f"multihop-{multihop['task']}.png")
    body = render_markdown(multihop)
    body = body.split("\n", 1)[1] if body.startswith("## ") else body  # its own title: this section has one
    command = ["rag-bench", "analyze", "multihop", *map(str, sources), "--task", multihop["task"],
               "-k", ",".join(map(str, multihop["ks"]))]
    return "\n".join([f"## Phase 4: multi-hop ({multihop['task']})", "", f"Command: {code(command)}", "", body,
                      f"![multihop]({plot.relative_to(out_md.parent).as_posix()})", ""])


def render(inputs: ReportInputs, multihop: dict[str, Any] | None, out_md: Path, command: Sequence[str]) -> str:
    """The whole report; figures are copied or drawn into `<out_md's folder>/results/`."""
    git = git_revision() or {}  # before the figures are redrawn, which would mark the checkout dirty
    figures = out_md.parent / "results"
    if figures.exists():
        shutil.rmtree(figures)
    header = ["# Results", "",
              f"Generated by {code(command)} on {now()} from {len(inputs.entries)} full run(s), {len(inputs.sweeps)} "
              f"sweep(s) and {len(inputs.curves)} llm_memory adapt curve(s); rag-bench at commit "
              f"{git.get('commit', 'unknown')[:10]}{' (uncommitted changes)' if git.get('dirty') else ''}. "
              "Do not edit by hand: re-run the command.", ""]
    sections = [plan_status(inputs, multihop), scope(inputs), comparison(inputs),
                equal_bytes_section(inputs.entries, figures, out_md), answers_section(inputs.entries, figures, out_md),
                corpus_axis_section(inputs.entries, figures, out_md),
                sweeps(inputs, figures, out_md),
                curves(inputs, figures, out_md), write_curves_section(figures, out_md),
                multihop_section(multihop, inputs.sources, figures, out_md)]
    return "\n".join(header) + "\n" + "\n".join(section for section in sections if section)

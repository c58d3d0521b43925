"""`rag-bench write-curve`: the write protocol's command (see the package docstring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import RagBenchError
from ..params import parse_steps

DEFAULT_OUT = Path("docs") / "benchmarks" / "write_curves"



def result_name(task: str, provider: str, settings: dict[str, str]) -> str:
    """``<task>__<provider>.json``; with -P settings, their hash is added (another configuration, another file)."""
    from ..jsonl import fingerprint

    return f"{task}__{provider}" + (f"__{fingerprint(settings, 8)}" if settings else "") + ".json"


def _cell(agg: dict[str, Any] | None) -> str:
    from ..summary import format_aggregate

    return format_aggregate(agg, with_ci=False)


def summary_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The terminal table: one row per write-curve point, then one per forgetting point (the batch just written as
    "new", the original passages' retention as "old")."""
    from .protocol import HEADLINE

    headers = ["write", f"new {HEADLINE}", "prepared with them", "new evidence_rougeL",
               f"old {HEADLINE} after / before", f"batch 1 {HEADLINE} now / when written", "s/doc", "bytes/doc"]

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    rows = []
    reference = result["reference"]["new"]
    for point in result["write_curve"]:
        rows.append(["all at once" + (f", {point['steps']} steps" if point["steps"] is not None else ""),
                     _cell(point["new"].get(HEADLINE)), _cell(reference.get(HEADLINE)),
                     _cell(point["new"].get("evidence_rougeL")), ratio(point["retention"].get(HEADLINE)), "-",
                     f"{point['cost']['seconds_per_doc']:.4f}", f"{point['cost']['bytes_per_doc']:.0f}"])
    for point in (result.get("forgetting") or {}).get("points", []):
        sets = {s["name"]: s for s in point["sets"]}
        new = sets[f"batch {point['after_batch']}"]
        rows.append([f"batch {point['after_batch']} of {result['forgetting']['batches']}",
                     _cell(new["figures"].get(HEADLINE)), _cell(new["reference"].get(HEADLINE)),
                     _cell(new["figures"].get("evidence_rougeL")), ratio(sets["original"]["retention"].get(HEADLINE)),
                     ratio(sets["batch 1"]["retention"].get(HEADLINE)),
                     f"{point['cost']['seconds_per_doc']:.4f}", f"{point['cost']['bytes_per_doc']:.0f}"])
    return headers, rows


@click.command("write-curve")
@click.option("--task", "-t", "task_name", required=True, help="Task name or card path; it needs a dev split.")
@click.option("--provider", "-p", required=True, help="Evidence provider name (see `rag-bench plugins`).")
@click.option("-P", "provider_params", multiple=True, metavar="KEY=VALUE", help="Provider setting; repeatable.")
@click.option("--held-out", "held_out", type=int, default=100, show_default=True,
              help="Passages held out of preparation and written in afterwards: gold passages of dev questions.")
@click.option("--batches", type=int, default=1, show_default=True,
              help="Write the held-out passages in this many sequential batches and score, after each, every earlier "
                   "batch and the original passages (the forgetting curve); 1: one write.")
@click.option("--steps", "steps_text", default="0,10,25,50,100,200", show_default=True,
              help="Optimisation steps per new passage, one write-curve point each, for a provider whose write "
                   "optimises (llm_memory); the forgetting curve uses the largest. Others write once.")
@click.option("--seed", type=int, default=0, show_default=True, help="Chooses the held-out passages; seeds the writes.")
@click.option("--old-limit", type=int, default=None,
              help="Score retention on the first N old dev questions only (default: all of them).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Questions per provide call.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT, show_default=True,
              help="Folder for the result, one JSON per (task, provider).")
def write_curve(task_name, provider, provider_params, held_out, batches, steps_text, seed, old_limit, batch_size, out):
    """Write new documents into PROVIDER and measure it: new-passage quality against the provider prepared with them,
    old-passage retention, and seconds and bytes per document.

    The held-out passages are left out of the corpus at preparation (a derived task, TASK-minus-HASH, with its own
    cached state), then written in with the provider's optional `write` hook; providers without it are reported as
    "cannot write". The same provider prepared on the whole task (normally already cached) is the reference.
    """
    from ..jsonl import write_json_atomic
    from ..manifest import now, software
    from ..params import parse_assignments
    from ..runner import build_provider
    from ..summary import table
    from ..task_store import load_task
    from .heldout import select_held_out
    from .protocol import write_curve as run_protocol

    steps = parse_steps(steps_text)
    if batch_size < 1:
        raise RagBenchError("--batch-size must be at least 1")
    if old_limit is not None and old_limit < 1:
        raise RagBenchError("--old-limit must be at least 1")
    settings = parse_assignments(provider_params)
    build_provider(provider, settings).close()  # an unknown provider or a bad setting fails before any task work
    task = load_task(task_name)
    held = select_held_out(task, held_out, batches, seed)
    click.echo(f"{task.name}: {len(held.passages)} held-out passages in {batches} batch(es), "
               f"{len(held.new_questions)} new and {len(held.old_questions)} old dev questions", err=True)
    result = run_protocol(task, provider, lambda: build_provider(provider, settings), held, steps=steps,
                          batch_size=batch_size, old_limit=old_limit, seed=seed,
                          log=lambda line: click.echo(line, err=True))
    # the command that reproduces this result, spelled from the parsed options (whatever the order or defaults used)
    command = ["rag-bench", "write-curve", "--task", task_name, "--provider", provider,
               *(arg for pair in provider_params for arg in ("-P", pair)), "--held-out", str(held_out),
               "--batches", str(batches), "--steps", ",".join(map(str, steps)), "--seed", str(seed),
               *(["--old-limit", str(old_limit)] if old_limit else []), "--batch-size", str(batch_size),
               "--out", str(out)]
    result = {"task": task.name, "task_version": task.version, "task_files": task.files_sha256, "provider": provider,
              **result, "command": command, "created": now(), "software": software()}
    path = out / result_name(task.name, provider, settings)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, result)
    if not result["can_write"]:
        click.echo(f"{provider}: cannot write ({result['reason']}) -> {path}")
        return
    click.echo(table(*summary_rows(result)))
    click.echo(f"-> {path}")

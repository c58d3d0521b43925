"""`rag-bench report`: write the results report from what is under a runs folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option("--runs-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("runs"), show_default=True,
              help="Holds sweeps/ and adapt-curves/; also the default SOURCES.")
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), default=Path("docs/RESULTS.md"),
              show_default=True, help="The report; its figures go to a results/ folder beside it.")
def report(sources, runs_dir, out):
    """Write the results report: the research plan's four phases from finished runs (SOURCES: run folders,
    runs roots or published results; default RUNS_DIR), RUNS_DIR/sweeps/* and RUNS_DIR/adapt-curves/*."""
    from ..analysis.multihop import multihop_table
    from ...errors import RagBenchError
    from ...jsonl import write_text_atomic
    from .render import MULTIHOP_TASK, render
    from .sources import gather

    given = list(sources)
    sources = given or [runs_dir]
    inputs = gather(runs_dir, sources)
    multihop = None
    if any(e.task == MULTIHOP_TASK for e in inputs.entries):
        try:
            multihop = multihop_table(inputs.entries, MULTIHOP_TASK, (2, 5))
        except RagBenchError as exc:
            click.echo(f"rag-bench report: multi-hop section left out: {exc}", err=True)
    command = ["rag-bench", "report", *map(str, given), "--runs-dir", str(runs_dir), "--out", str(out)]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, render(inputs, multihop, out, command))
    click.echo(f"{len(inputs.entries)} runs, {len(inputs.sweeps)} sweeps, {len(inputs.curves)} curves -> {out}")

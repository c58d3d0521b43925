"""`rag-bench sweep SPEC.yaml`: a grid of provider settings, each cell an ordinary resumable run."""

from __future__ import annotations

from pathlib import Path

import click

from ..summary import table


@click.command()
@click.argument("spec_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--max-parallel", type=int, default=1, show_default=True, help="Cells run at once (each in its own process).")
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Where the cells' runs go (the same folders `rag-bench run` uses).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for the summary, heat-maps and logs (default: RUNS_DIR/sweeps/NAME).")
@click.option("--dry-run", is_flag=True, help="List the cells, their run folders and the command of each; run nothing.")
@click.option("--no-plots", is_flag=True, help="Skip the heat-maps.")
def sweep(spec_file, max_parallel, runs_dir, out, dry_run, no_plots):
    """Run every cell of the grid in SPEC_FILE and summarise them; re-running skips finished cells.

    SPEC_FILE is YAML: provider, task, fixed `params`, a `grid` of settings to
    vary, and the `metrics` to tabulate (see docs/SWEEPS.md). A cell that fails is
    reported and the sweep goes on; the command exits 1 if any cell failed.
    """
    from ..errors import RagBenchError
    from ..runner import plan_run
    from .execute import STATUSES, cell_argv, cell_config, check_spec, is_finished, run_sweep
    from ..task_store import load_task
    from .spec import load_spec, with_split
    from .summary import summarise, table_rows, write_summary

    spec = load_spec(spec_file)
    card = load_task(spec.task).card
    spec = with_split(spec, tuple(card.splits), card.default_split)
    out = out or runs_dir / "sweeps" / spec.name
    if dry_run:
        check_spec(spec)
        rows = []
        for cell in spec.cells():
            path = plan_run(cell_config(spec, cell, runs_dir)).path
            rows.append([cell.name, "finished" if is_finished(path) else "to run", path,
                         " ".join(["rag-bench", *cell_argv(spec, cell, runs_dir)])])
        click.echo(table(["cell", "state", "run folder", "command"], rows))
        return

    def report(outcome):
        detail = f": {outcome.error}" if outcome.error else ""
        click.echo(f"cell {outcome.cell.name}: {outcome.status} ({outcome.seconds:.0f}s){detail}", err=True)

    outcomes = run_sweep(spec, out, runs_dir, max_parallel, on_outcome=report)
    command = ["rag-bench", "sweep", str(spec_file), "--max-parallel", str(max_parallel), "--runs-dir", str(runs_dir),
               "--out", str(out)]
    summary = summarise(spec, outcomes, command, max_parallel)
    written = write_summary(summary, out, plots=not no_plots)
    header, rows = table_rows(summary)
    click.echo(table(header, rows))
    failed = [o.cell.name for o in outcomes if o.status == "failed"]
    counts = {status: sum(o.status == status for o in outcomes) for status in STATUSES}
    click.echo(f"\n{len(outcomes)} cells: {counts['done']} run now, {counts['cached']} finished before, "
               f"{counts['failed']} failed -> {out} ({len(written)} files)")
    if failed:
        raise RagBenchError(f"{len(failed)} cell(s) failed: {', '.join(failed)}; their logs are in {out / 'logs'}; "
                            "fix the cause and run the same command again to retry them")

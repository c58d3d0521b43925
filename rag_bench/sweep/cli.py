"""`rag-bench sweep SPEC.yaml`: a grid of provider settings, each cell an ordinary resumable run."""

from __future__ import annotations

from pathlib import Path

import click

from ..summary import table


@click.command()
@click.argument("spec_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--executor", type=click.Choice(["local", "slurm", "ray"]), default="local", show_default=True,
              help="Where the cells run: child processes here, Slurm jobs (submitit), or Ray tasks.")
@click.option("--max-parallel", type=int, default=None,
              help="Cells run at once. Default: 1 locally; for slurm and ray, as many as the cluster schedules.")
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Where the cells' runs go (the same folders `rag-bench run` uses).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for the summary, heat-maps and logs (default: RUNS_DIR/sweeps/NAME).")
@click.option("--dry-run", is_flag=True, help="List the cells, their run folders and the command of each; run nothing.")
@click.option("--no-plots", is_flag=True, help="Skip the heat-maps.")
@click.option("--cpus-per-cell", type=int, default=None, help="slurm/ray: CPU cores per cell (spec: resources.cpus).")
@click.option("--gpus-per-cell", type=int, default=None, help="slurm/ray: GPUs per cell (spec: resources.gpus).")
@click.option("--mem", default=None, help="slurm/ray: memory per cell, e.g. 64G (spec: resources.mem).")
@click.option("--slurm-time", default=None,
              help="slurm: time limit per cell, e.g. 4:00:00 (spec: resources.time; default 60 minutes).")
@click.option("--slurm-partition", default=None, help="slurm: partition (spec: slurm.partition).")
@click.option("--slurm-account", default=None, help="slurm: account (spec: slurm.account).")
@click.option("--slurm-option", "slurm_options", multiple=True, metavar="KEY=VALUE",
              help="slurm: any other sbatch option, e.g. qos=high or exclude=node17 (repeatable).")
@click.option("--retries", type=int, default=2, show_default=True,
              help="slurm/ray: how often a cell that was killed or pre-empted runs again (it resumes).")
@click.option("--no-wait", is_flag=True,
              help="slurm: submit the cells and exit; the same command without it later waits and summarises.")
@click.option("--ray-address", default=None,
              help="ray: the cluster to join, e.g. HOST:6379 or auto (default: $RAY_ADDRESS, else a local cluster).")
def sweep(spec_file, executor, max_parallel, runs_dir, out, dry_run, no_plots, cpus_per_cell, gpus_per_cell, mem,
          slurm_time, slurm_partition, slurm_account, slurm_options, retries, no_wait, ray_address):
    """Run every cell of the grid in SPEC_FILE and summarise them; re-running skips finished cells.

    SPEC_FILE is YAML: provider, task, fixed `params`, a `grid` of settings to
    vary, and the `metrics` to tabulate (see docs/SWEEPS.md). A cell that fails is
    reported and the sweep goes on; the command exits 1 if any cell failed.

    --executor slurm submits each cell as a Slurm job (submitit) and --executor
    ray as a Ray task, with the CPUs, GPUs, memory and time of the spec's
    `resources:` block or the options below; a cell killed part-way runs again
    and resumes from its records. The summary has the same shape whatever the
    executor.
    """
    from ..errors import RagBenchError
    from ..run_plan import plan_run
    from .execute import STATUSES, cell_argv, cell_config, check_spec, is_finished, run_sweep
    from .factory import make_executor
    from .resources import parse_mem, parse_option, parse_time
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
            try:
                path = plan_run(cell_config(spec, cell, runs_dir)).path
                state = "finished" if is_finished(path) else "to run"
            except RagBenchError as exc:  # e.g. 4-bit without CUDA: a GPU node may plan it (--executor slurm|ray)
                path, state = "-", f"cannot plan here: {exc}"
            rows.append([cell.name, state, path, " ".join(["rag-bench", *cell_argv(spec, cell, runs_dir)])])
        click.echo(table(["cell", "state", "run folder", "command"], rows))
        return

    def report(outcome):
        detail = f": {outcome.error}" if outcome.error else ""
        click.echo(f"cell {outcome.cell.name}: {outcome.status} ({outcome.seconds:.0f}s){detail}", err=True)

    if no_wait and executor != "slurm":
        raise RagBenchError("--no-wait applies to --executor slurm only")
    resources = spec.resources.override(cpus=cpus_per_cell, gpus=gpus_per_cell,
                                        mem_mb=parse_mem(mem, "--mem") if mem else None,
                                        time_min=parse_time(slurm_time, "--slurm-time") if slurm_time else None)
    slurm = spec.slurm.override(partition=slurm_partition, account=slurm_account,
                                options=dict(parse_option(o) for o in slurm_options))
    runner = make_executor(executor, max_parallel=max_parallel, folder=out / "slurm", resources=resources, slurm=slurm,
                           retries=retries, wait=not no_wait, job_name=f"rag-bench-{spec.name}", address=ray_address)
    outcomes = run_sweep(spec, out, runs_dir, on_outcome=report, executor=runner)
    pending = [o.cell.name for o in outcomes if o.status == "pending"]
    if pending:
        click.echo(f"{len(pending)} cell(s) submitted to Slurm (jobs in {out / 'slurm' / 'jobs.json'}); run the same "
                   "command without --no-wait to wait for them and write the summary")
        return
    parallel = runner.max_parallel or len(outcomes)
    given = [("--cpus-per-cell", cpus_per_cell), ("--gpus-per-cell", gpus_per_cell), ("--mem", mem),
             ("--slurm-time", slurm_time), ("--slurm-partition", slurm_partition), ("--slurm-account", slurm_account),
             *(("--slurm-option", o) for o in slurm_options), ("--ray-address", ray_address)]
    cluster = [] if executor == "local" else ["--executor", executor, "--retries", str(retries)]
    cluster += [str(part) for flag, value in given if executor != "local" and value is not None
                for part in (flag, value)]
    command = ["rag-bench", "sweep", str(spec_file), *cluster, "--max-parallel", str(parallel),
               "--runs-dir", str(runs_dir), "--out", str(out)]
    summary = summarise(spec, outcomes, command, parallel, executor=executor)
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

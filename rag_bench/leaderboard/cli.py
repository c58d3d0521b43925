"""`rag-bench leaderboard build | verify | publish`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from ..errors import RagBenchError
from ..summary import table

DEFAULT_RESULTS = Path("leaderboard/results")
DEFAULT_TASKS = ("nq_5k", "hotpotqa_5k")
#: Where `rag-bench write-curve` results are committed (its default --out).
DEFAULT_WRITE_CURVES = Path("docs/benchmarks/write_curves")

_sources = click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))


def _collect(sources: tuple[Path, ...]):
    from .collect import collect_entries

    return collect_entries(*sources)


def _only(entries, tasks: tuple[str, ...], providers: tuple[str, ...]):
    return [e for e in entries if (not tasks or e.task in tasks) and (not providers or e.provider in providers)]


def _default_results_notice(cwd: Path) -> str:
    """Where `publish` writes without --results, and a warning when that is not a rag-bench checkout."""
    target = (cwd / DEFAULT_RESULTS).resolve()
    if (cwd / DEFAULT_RESULTS).is_dir():
        return f"rag-bench: publishing into {target}"
    return (f"rag-bench: publishing into {target}: this folder is not a rag-bench checkout (no {DEFAULT_RESULTS} here), "
            "so it will be created; pass --results DIR to write elsewhere")


@click.group()
def leaderboard():
    """Build, publish and verify the static leaderboard."""


@leaderboard.command()
@_sources
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Folder for the site (replaced if an earlier build is there).")
@click.option("--no-plots", is_flag=True, help="Skip the matplotlib plots.")
@click.option("--write-curves", type=click.Path(path_type=Path, file_okay=False), default=None,
              help=f"Folder of `rag-bench write-curve` results to plot under their task (default: {DEFAULT_WRITE_CURVES} "
                   "when it exists here).")
def build(sources, out, no_plots, write_curves):
    """Build a static site from run directories and/or published results (SOURCES...)."""
    from .site import build_site

    entries = _collect(sources)
    if not entries:
        raise RagBenchError(f"no finished runs or published results under {', '.join(map(str, sources))}; "
                            "run `rag-bench run ...` first or pass leaderboard/results")
    if write_curves is None and DEFAULT_WRITE_CURVES.is_dir():
        write_curves = DEFAULT_WRITE_CURVES
    elif write_curves is not None and not write_curves.is_dir():
        raise RagBenchError(f"--write-curves {write_curves}: no such folder")
    site = build_site(entries, out, plots=not no_plots, write_curves=write_curves)
    click.echo(f"{len(entries)} row(s), {len(site.plots)} plot(s) -> {site.index.resolve().as_uri()}")


@leaderboard.command()
@_sources
@click.option("--tolerance", type=float, default=0.01, show_default=True, help="Largest absolute difference allowed on a score.")
@click.option("--footprint-tolerance", type=float, default=0.1, show_default=True, help="Largest relative difference allowed on footprint.")
@click.option("--task", "tasks", multiple=True, help="Only rows of this task; repeatable.")
@click.option("--provider", "providers", multiple=True, help="Only rows of this provider; repeatable.")
@click.option("--keep-runs", type=click.Path(path_type=Path), default=None, help="Keep the re-runs here instead of a temporary folder.")
def verify(sources, tolerance, footprint_tolerance, tasks, providers, keep_runs):
    """Re-run each row's command and compare with its published figures: OK / FAIL per row."""
    from .verify import verify_entries

    entries = _only(_collect(sources), tasks, providers)
    if not entries:
        raise RagBenchError("no rows to verify; check the SOURCES folder and the --task/--provider filters")

    def progress(check):
        e = check.entry
        click.echo(f"{'OK  ' if check.ok else 'FAIL'} {e.task} {e.provider} ({e.reader}): {check.detail}", err=True)

    checks = verify_entries(entries, tolerance, footprint_tolerance, keep_runs, progress)
    rows = [[c.entry.task, c.entry.provider, c.entry.reader, "OK" if c.ok else "FAIL",
             "-" if c.max_deviation is None else f"{c.max_deviation:.2g}", c.detail] for c in checks]
    click.echo(table(["task", "provider", "reader", "result", "max |diff|", "detail"], rows))
    failed = sum(not c.ok for c in checks)
    click.echo(f"{len(checks) - failed}/{len(checks)} row(s) reproduced within tolerance.")
    if failed:
        raise click.exceptions.Exit(1)


@leaderboard.command()
@click.option("--provider", "providers", multiple=True, help="Provider to run (repeatable; default: every registered provider).")
@click.option("--task", "tasks", multiple=True, help=f"Task to run (repeatable; default: {', '.join(DEFAULT_TASKS)} where registered).")
@click.option("--reader", default="none", show_default=True, help="Reader every row uses.")
@click.option("--from-runs", type=click.Path(path_type=Path, exists=True), default=None,
              help="Publish the finished runs in this runs directory instead of running anything.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None, help="Where the runs go (default: a temporary folder).")
@click.option("--results", type=click.Path(path_type=Path), default=None,
              help=f"Folder of published results (default: {DEFAULT_RESULTS} under the current folder).")
@click.option("--site", type=click.Path(path_type=Path), default=None, help="Also build the site from all results into this folder.")
def publish(providers, tasks, reader, from_runs, work_dir, results, site):
    """Run the leaderboard commands and write their aggregated results (no dataset text) to --results."""
    from ..registry import registry
    from .collect import collect_entries
    from .publish import export_results, finished_runs, run_commands
    from .site import build_site

    if results is None:
        results = DEFAULT_RESULTS
        click.echo(_default_results_notice(Path.cwd()), err=True)
    failures = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-publish-") as tmp:
        if from_runs is not None:
            runs_dir = from_runs
            entries = _only(finished_runs(runs_dir), tasks, providers)
        else:
            reg = registry()
            providers = providers or tuple(reg.providers.names())
            tasks = tasks or tuple(t for t in DEFAULT_TASKS if t in reg.tasks.entries)
            workdir = work_dir or Path(tmp)
            outcomes = run_commands(providers, tasks, reader, workdir)
            failures = [" ".join(o.command) for o in outcomes if o.returncode != 0]
            wanted = {(t, p) for t in tasks for p in providers}
            entries = [e for e in finished_runs(workdir / "runs") if (e.task, e.provider) in wanted and e.reader == reader]
        written = export_results(entries, results)
    for published in written:
        click.echo(f"published {published.path}")
        for replaced in published.replaced:
            click.echo(f"  {replaced.describe()}")
    if site is not None:
        built = build_site(collect_entries(results), site)
        click.echo(f"site -> {built.index.resolve().as_uri()}")
    if failures:
        click.echo("these commands failed and were not published:\n  " + "\n  ".join(failures), err=True)
        raise click.exceptions.Exit(1)


@leaderboard.command()
@click.argument("results", required=False, type=click.Path(path_type=Path, exists=True, file_okay=False),
                default=DEFAULT_RESULTS)
@click.option("--task", "tasks", multiple=True, help="Only this task's rows (repeatable).")
@click.option("--provider", "providers", multiple=True, help="Only this provider's rows (repeatable).")
@click.option("--questions", default=100, show_default=True, help="Questions of each task's split timed per round.")
@click.option("--rounds", default=3, show_default=True, help="Interleaved rounds (each visits every configuration).")
@click.option("--seed", default=0, show_default=True, help="Seeds the order of the configurations in each round.")
@click.option("--cached-only", is_flag=True, help="Skip rows whose provider state is not cached here instead of "
              "preparing it (which may train a memory).")
def measure(results, tasks, providers, questions, rounds, seed, cached_only):
    """Re-time every published row's provider on this machine in one sitting, interleaved over the same questions,
    and write RESULTS/latency_sitting.json: the board and the report then show these latencies only."""
    import sys

    from .collect import load_result_file
    from .latency import measure_sitting, write_sitting

    entries = [e for p in sorted(results.rglob("*.json")) if (e := load_result_file(p)) is not None]
    entries = _only(entries, tasks, providers)
    sitting = measure_sitting(entries, questions, rounds, seed, cached_only, command=["rag-bench", *sys.argv[1:]],
                              progress=lambda line: click.echo(line, err=True))
    path = write_sitting(sitting, results)
    rows = [[r["task"], r["configuration"], f"{r['p50_ms']:.2f}", f"{r['spread_ms'][0]:.2f}–{r['spread_ms'][1]:.2f}"]
            for r in {r["configuration"]: r for r in sitting["rows"].values()}.values()]
    click.echo(table(["task", "provider configuration", "p50 ms", "round p50s"], rows))
    for row_id, why in sitting["skipped"].items():
        click.echo(f"not timed: {row_id}: {why}", err=True)
    click.echo(f"wrote {path}")

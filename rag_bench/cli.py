"""The `rag-bench` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .diagnostics import failure_lines
from .errors import EXIT_INCOMPLETE, RagBenchError
from .params import parse_assignments, parse_ks
from .run_dir import RunDir
from .summary import metrics_table, table

#: Exit status of a run that finished with failed questions or unscored judge metrics (without --allow-failures).


class ErrorHandlingGroup(click.Group):
    """Print a user error in one line and exit 1; tracebacks are kept for bugs."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RagBenchError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=ErrorHandlingGroup)
@click.version_option(package_name="rag-bench")
def cli():
    """Benchmark evidence providers for open-domain QA under one reader and one set of metrics."""


def default_reader() -> str:
    """openai:gpt-4o-mini when a key is set and the openai reader is installed, else none."""
    from .registry import registry

    if os.environ.get("OPENAI_API_KEY") and "openai" in registry().readers.entries:
        return "openai:gpt-4o-mini"
    click.echo("rag-bench: no reader LLM configured (set OPENAI_API_KEY or pass --reader); reporting evidence-only metrics.", err=True)
    return "none"


@cli.command()
@click.option("--provider", "-p", required=True, help="Evidence provider name (see `rag-bench plugins`).")
@click.option("--task", "-t", required=True, help="Task name (see `rag-bench tasks`).")
@click.option("--split", default=None, help="Split to score (default: the task card's, usually test).")
@click.option("--limit", type=int, default=None, help="Score only the first N questions of the split.")
@click.option("-k", "ks", default=None, help="Retrieval cut-offs, comma-separated (default: the task card's, e.g. 1,5,20); "
              "the provider ranks down to the largest.")
@click.option("--reader-k", "reader_k", type=int, default=5, show_default=True,
              help="Evidence texts the reader sees: the top N of the ranking (at most the largest -k).")
@click.option("-P", "provider_params", multiple=True, metavar="KEY=VALUE", help="Provider setting; repeatable.")
@click.option("--reader", default=None, help="Reader, NAME or NAME:MODEL (default: openai:gpt-4o-mini with OPENAI_API_KEY set, else none).")
@click.option("-R", "reader_params", multiple=True, metavar="KEY=VALUE", help="Reader setting; repeatable.")
@click.option("--reader-base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (-R base_url=...).")
@click.option("--reader-model", default=None, help="Reader model (-R model=...).")
@click.option("--reader-concurrency", type=int, default=None, help="Reader calls in flight (-R concurrency=...).")
@click.option("--judges", default="", help="Opt-in judge metrics, comma-separated (e.g. ragas,ragchecker).")
@click.option("-J", "judge_params", multiple=True, metavar="KEY=VALUE", help="Judge setting (default: the reader's endpoint); repeatable.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Questions per provide/read call.")
@click.option("--no-overlap", is_flag=True,
              help="Provide and read each batch only after the previous one is read (default: the next batch's provide "
                   "overlaps the reader's calls, on a second thread, and a remote reader gets the next batch's calls "
                   "queued behind this one's; results are the same).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option("--overwrite", is_flag=True, help="Discard an earlier run of this configuration and start fresh.")
@click.option("--max-consecutive-failures", type=click.IntRange(min=0), default=10, show_default=True,
              help="Stop the run (status failed, resumable) after this many failed reader or judge calls in a row; 0: never.")
@click.option("--allow-failures", is_flag=True,
              help=f"Exit 0 even when some questions failed or some judge scores are missing (else exit {EXIT_INCOMPLETE}).")
def run(provider, task, split, limit, ks, reader_k, provider_params, reader, reader_params, reader_base_url, reader_model, reader_concurrency,
        judges, judge_params, batch_size, no_overlap, seed, runs_dir, overwrite, max_consecutive_failures, allow_failures):
    """Score PROVIDER on TASK; re-running the same command resumes where it stopped.

    Exit status: 0 when every question was answered and every judge score
    computed; 3 when the run finished with failed questions or unscored judge
    metrics (status complete_with_failures; --allow-failures makes it 0);
    1 on an error, including an endpoint that failed too many calls in a row.
    """
    from .runner import RunConfig, execute, split_reader_spec

    # Naming an endpoint or a model implies the openai reader.
    reader_spec = reader or ("openai" if reader_base_url or reader_model else default_reader())
    reader_name, reader_settings = split_reader_spec(reader_spec)
    reader_settings.update(parse_assignments(reader_params))
    for key, value in (("base_url", reader_base_url), ("model", reader_model), ("concurrency", reader_concurrency)):
        if value is not None:
            reader_settings[key] = str(value)
    cfg = RunConfig(
        provider=provider,
        task=task,
        split=split,
        limit=limit,
        ks=parse_ks(ks),
        reader_k=reader_k,
        provider_params=parse_assignments(provider_params),
        reader=reader_name,
        reader_params=reader_settings,
        judges=tuple(j.strip() for j in judges.split(",") if j.strip()),
        judge_params=parse_assignments(judge_params),
        batch_size=batch_size,
        overlap=not no_overlap,
        seed=seed,
        runs_dir=runs_dir,
        overwrite=overwrite,
        max_consecutive_failures=max_consecutive_failures or None,
    )
    result = execute(cfg, argv=["rag-bench", *sys.argv[1:]])
    counts = result.metrics["counts"]
    depth = f"reader {result.manifest['reader']['name']} sees the top {result.manifest['reader_k']} of {max(result.manifest['ks'])}"
    click.echo(f"\n{provider} on {task}/{result.metrics['run']['split']} ({counts['questions']} questions, "
               f"{counts['failed']} failed; {result.computed} computed now; {depth}) -> {result.path}")
    click.echo(metrics_table(result.metrics))
    for line in failure_lines(result.metrics, RunDir(result.path).error_log_path):
        click.echo(line, err=True)
    if result.manifest["status"] != "complete" and not allow_failures:
        click.echo(f"rag-bench: status {result.manifest['status']}: exit {EXIT_INCOMPLETE} "
                   "(re-run the same command to retry what is missing, or pass --allow-failures)", err=True)
        sys.exit(EXIT_INCOMPLETE)


def _description(kind_label: str, value) -> str:
    """A registered thing's one-line description (a task's comes from its card)."""
    text = value.card.description if kind_label == "task" else getattr(value, "description", "")
    return " ".join(str(text or "").split()) or "-"


@cli.command()
def plugins():
    """List plugins (hooks, distribution, what they register), then every provider, reader and metric with its description."""
    from .plugins import plugin_infos
    from .registry import registry

    reg = registry()
    kinds = (("provider", reg.providers), ("task", reg.tasks), ("reader", reg.readers), ("metric", reg.metrics))
    provided: dict[str, list[str]] = {}
    for label, kind in kinds:
        for entry in kind.entries.values():
            provided.setdefault(entry.plugin, []).append(f"{label}:{entry.name}")
    rows = []
    for info in plugin_infos():
        dist = f"{info.distribution} {info.version}" if info.distribution else "-"
        status = f"BROKEN: {info.error}" if info.error else ", ".join(sorted(provided.get(info.name, [])))
        rows.append([info.name, dist, ", ".join(info.hooks) or "-", status])
    click.echo(table(["plugin", "distribution", "hooks", "registers"], rows))
    described = [[label, name, kind.entries[name].plugin, _description(label, kind.entries[name].value)]
                 for label, kind in kinds if label != "task" for name in kind.names()]
    click.echo("\n" + table(["kind", "name", "plugin", "description"], described))


@cli.command()
def tasks():
    """List registered tasks with version, splits and default k."""
    from .registry import registry

    rows = []
    for name in registry().tasks.names():
        entry = registry().tasks.entries[name]
        card = entry.value.card
        rows.append([name, card.version, ",".join(card.splits), ",".join(map(str, card.k)), entry.plugin, card.description[:60]])
    click.echo(table(["task", "version", "splits", "k", "plugin", "description"], rows))


@cli.command()
@click.option("--task", "-t", "task_name", required=True)
@click.option("--provider", "-p", default=None, help="Also build this provider's state (index, memory).")
@click.option("-P", "provider_params", multiple=True, metavar="KEY=VALUE")
@click.option("--force", is_flag=True, help="Rebuild the task from its sources even if prepared.")
def prepare(task_name, provider, provider_params, force):
    """Prepare a task (verify sources, build corpus/queries/qrels) and optionally a provider's state."""
    from .preparation import build_provider, prepare_provider
    from .task_store import load_task

    provider_obj = build_provider(provider, parse_assignments(provider_params)) if provider else None
    task = load_task(task_name, force=force)
    counts = {split: len(task.split(split)) for split in task.card.splits}
    passages = f"{task.num_passages:,} passages (external: prebuilt indexes)" if task.external else f"{len(task.corpus)} passages"
    click.echo(f"{task.name} v{task.version}: {passages}, questions {counts} -> {task.path}")
    if provider_obj is not None:
        info = prepare_provider(provider, provider_obj, task)
        state = "reused" if info["reused_cache"] else "built"
        click.echo(f"{provider}: state {state} in {info['prepare_s']:.1f}s -> {info['workdir']}")
        provider_obj.close()


from .leaderboard.cli import leaderboard as _leaderboard  # noqa: E402  (click only; heavy imports are lazy)

from .sweep.cli import sweep as _sweep  # noqa: E402
from .study.analysis.cli import analyze as _analyze  # noqa: E402
from .study.report.cli import report as _report  # noqa: E402
from .write_curve.cli import write_curve as _write_curve  # noqa: E402

cli.add_command(_leaderboard)
cli.add_command(_sweep)
cli.add_command(_analyze)
cli.add_command(_report)
cli.add_command(_write_curve)


def _load_plugin_commands() -> None:
    from .plugins import plugin_manager

    try:
        plugin_manager().hook.register_commands(cli=cli)
    except Exception as exc:  # one broken plugin command must not break the CLI
        click.echo(f"rag-bench: warning: a plugin's register_commands failed: {exc}", err=True)


def main() -> None:
    _load_plugin_commands()
    cli(prog_name="rag-bench")


if __name__ == "__main__":
    main()

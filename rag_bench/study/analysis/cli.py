"""`rag-bench analyze multihop`: the multi-hop analysis from run directories and/or published results."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def analyze():
    """Analyses across finished runs and published results."""


@analyze.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--task", "-t", default="hotpotqa_5k", show_default=True, help="Task whose rows to analyse.")
@click.option("-k", "ks", default="2,5", show_default=True, help="Cut-offs, comma-separated; the first is the headline.")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Folder for multihop.json, .md and .png (default: runs/analysis/multihop-<task>).")
def multihop(sources, task, ks, out):
    """hit@k vs all_gold@k per provider and question type, and where the hops are lost (SOURCES: run
    directories, runs roots or published results, as for `rag-bench leaderboard build`)."""
    from ...params import parse_ks
    from ...jsonl import write_json_atomic, write_text_atomic
    from ...leaderboard.collect import collect_entries
    from ...manifest import now
    from .multihop import multihop_table
    from .multihop_render import render_markdown, render_plot

    result = multihop_table(collect_entries(*sources), task, parse_ks(ks) or ())
    out = out or Path("runs") / "analysis" / f"multihop-{task}"
    out.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(result)
    command = ["rag-bench", "analyze", "multihop", *map(str, sources), "--task", task, "-k", ks, "--out", str(out)]
    write_json_atomic(out / "multihop.json", {"command": command, "created": now(), **result})
    write_text_atomic(out / "multihop.md", markdown)
    render_plot(result, out / "multihop.png")
    click.echo(markdown)
    click.echo(f"-> {out / 'multihop.json'}, {out / 'multihop.md'}, {out / 'multihop.png'}", err=True)

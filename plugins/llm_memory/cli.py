"""`rag-bench memory ...`: train a memory, write new passages into it, and evaluate the write path (hold-out test, write-path curve)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click

from rag_bench.api import (
    Passage, RagBenchError, parse_assignments, parse_params, parse_steps, read_jsonl, write_json_atomic,
)

from .config import WRITE_LR, WRITE_STEPS  # config is light: no torch at CLI start


def read_passages(path: Path) -> list[Passage]:
    """Passages from a JSON-lines file with doc_id, title (optional) and text."""
    rows = read_jsonl(path, ("doc_id", "text"), bad_line="expected a JSON object with doc_id and text ({error})")
    return [Passage(str(row["doc_id"]), str(row.get("title", "")), str(row["text"])) for row in rows]


def settings(pairs) -> "LLMMemoryParams":
    """llm_memory settings from -P key=value pairs."""
    from .config import LLMMemoryParams

    return parse_params(LLMMemoryParams, parse_assignments(pairs), "provider llm_memory")


@click.group()
def memory():
    """Manage llm_memory checkpoints: add passages, evaluate the write path."""


@memory.command("train")
@click.option("--task", "-t", "task_name", required=True)
@click.option("-P", "provider_params", multiple=True, metavar="KEY=VALUE", help="llm_memory setting; repeatable.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Checkpoint folder; an interrupted training there resumes.")
@click.option("--slice", "slice_size", type=int, default=0, show_default=True,
              help="Train on N passages only, the gold passages of the first train questions, and the questions "
                   "they answer (a quick run; such a memory holds part of the corpus, so `rag-bench run` refuses "
                   "it). 0: the whole task.")
def train(task_name, provider_params, out, slice_size):
    """Train a memory on TASK's corpus and train split; use it with `rag-bench run -P checkpoint=OUT`.

    Runs data-parallel under `accelerate launch [--num_processes N] -m rag_bench.cli memory train ...`
    (GPUs, or CPU processes with `--cpu`); one process writes OUT.
    """
    from rag_bench.api import load_task

    from .system import MemorySystem

    params = settings(provider_params)
    if slice_size < 0:
        raise RagBenchError("--slice must be >= 0")
    task = load_task(task_name)
    passages, questions = task.corpus, task.split("train") if "train" in task.card.splits else []
    if slice_size:
        from .evaluation import gold_slice

        passages, questions = gold_slice(passages, questions, slice_size)
    dev = task.split("dev") if "dev" in task.card.splits else []
    _, report = MemorySystem.fit(params, passages, questions, out, dev=dev)
    from .train import process_state

    if not process_state().is_main_process:
        return
    last = report.history[-1] if report.history else {}
    click.echo(f"trained {report.steps} steps in {report.seconds:.0f}s (resumed from {report.resumed_from}); "
               f"final gen_loss {last.get('gen_loss', float('nan')):.3f}, route_loss {last.get('route_loss', float('nan')):.3f} -> {out}")


@memory.command("add")
@click.option("--checkpoint", "checkpoint", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="A trained memory (a folder holding memory.json + memory.safetensors).")
@click.option("--passages", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="JSON lines: doc_id, title, text.")
@click.option("--task", "-t", "task_name", required=True, help="Task whose corpus the checkpoint was trained on (resolves its doc_ids).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None, help="Where to write the extended memory (default: in place).")
@click.option("--steps", type=int, default=WRITE_STEPS, show_default=True)
@click.option("--lr", type=float, default=WRITE_LR, show_default=True)
def add(checkpoint, passages, task_name, out, steps, lr):
    """Optimise one fresh z_new per new passage (θ frozen) and append it to the memory."""
    from rag_bench.api import load_task

    from .system import MemorySystem
    from .write import add_passages

    new = read_passages(passages)
    system = MemorySystem.load(checkpoint, load_task(task_name).passages_by_id)
    report = add_passages(system, new, steps=steps, lr=lr)
    target = out or checkpoint
    system.save(target)
    click.echo(f"added {len(new)} passages in {steps} steps: mean loss {sum(report.loss_before) / len(new):.3f} -> "
               f"{sum(report.loss_after) / len(new):.3f}; memory now holds {len(system.passages)} -> {target}")


@memory.command("eval-add")
@click.option("--task", "-t", "task_name", required=True)
@click.option("--holdout", type=int, default=100, show_default=True, help="Passages held out of training and added afterwards.")
@click.option("-P", "provider_params", multiple=True, metavar="KEY=VALUE", help="llm_memory setting; repeatable.")
@click.option("-k", "k", type=int, default=5, show_default=True)
@click.option("--steps", type=int, default=WRITE_STEPS, show_default=True)
@click.option("--lr", type=float, default=WRITE_LR, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Folder for the memory and the report.")
def eval_add(task_name, holdout, provider_params, k, steps, lr, out):
    """Hold passages out of training, add them with the write path, report new-passage quality and old-passage retention."""
    from rag_bench.api import load_task

    from .evaluation import holdout_eval

    params = settings(provider_params)
    if holdout < 1:
        raise RagBenchError("--holdout must be at least 1")
    task = load_task(task_name)
    result = holdout_eval(task.corpus, task.split("train"), task.split(task.card.default_split), params, holdout,
                          out / "memory", k=k, steps=steps, lr=lr)
    write_json_atomic(out / "eval_add.json", result)
    click.echo(json.dumps(result, indent=2))


def echo_point(point: dict, k: int) -> None:
    """One progress line per scored point of the write-path curve (on stderr)."""
    click.echo(f"step {point['steps']}: new_recall@{k} {point[f'new_recall@{k}']:.3f}, "
               f"old_recall@{k} {point[f'old_recall@{k}']:.3f}", err=True)


@memory.command("adapt-curve")
@click.option("--task", "-t", "task_name", required=True)
@click.option("--holdout", type=int, default=30, show_default=True, help="Passages held out of training and added afterwards.")
@click.option("-P", "provider_params", multiple=True, metavar="KEY=VALUE", help="llm_memory setting; repeatable.")
@click.option("-k", "k", type=int, default=5, show_default=True)
@click.option("--steps", "steps_text", default="0,10,25,50,100,200", show_default=True,
              help="Step counts to score, comma-separated (any order).")
@click.option("--lr", type=float, default=WRITE_LR, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for memory/ and curve.{json,csv,png} (default: RUNS_DIR/adapt-curves/TASK__HASH); "
                   "a finished memory/ there (e.g. eval-add's) is reused.")
@click.option("--runs-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("runs"), show_default=True)
def adapt_curve(task_name, holdout, provider_params, k, steps_text, lr, out, runs_dir):
    """Write-path curve: new-passage recall and evidence ROUGE-L, and old-passage retention, against z_new steps."""
    from rag_bench.api import fingerprint, load_task, now, params_to_dict, software, table, write_text_atomic

    from . import adapt_curve as curve_module

    params = settings(provider_params)
    steps = parse_steps(steps_text)
    if holdout < 1:
        raise RagBenchError("--holdout must be at least 1")
    if lr <= 0:
        raise RagBenchError("--lr must be > 0")
    task = load_task(task_name)
    key = {"settings": params_to_dict(params), "holdout": holdout, "steps": steps, "lr": lr, "k": k}
    out = out or runs_dir / "adapt-curves" / f"{task.name}__{fingerprint(key, 12)}"
    result = curve_module.adapt_curve(task.corpus, task.split("train"), task.split(task.card.default_split), params,
                                      holdout, out / "memory", steps=steps, k=k, lr=lr,
                                      on_point=functools.partial(echo_point, k=k))
    # the command that reproduces this curve, spelled from the parsed options (whatever the order or defaults used)
    command = ["rag-bench", "memory", "adapt-curve", "--task", task_name, "--holdout", str(holdout),
               *(arg for pair in provider_params for arg in ("-P", pair)), "-k", str(k),
               "--steps", ",".join(map(str, steps)), "--lr", str(lr), "--out", str(out)]
    result = {"task": task.name, **result, "command": command, "created": now(), "software": software()}
    write_json_atomic(out / "curve.json", result)
    write_text_atomic(out / "curve.csv", curve_module.curve_csv(result))
    curve_module.plot_curve(result, out / "curve.png")
    click.echo(table(*curve_module.curve_rows(result)))
    click.echo(f"-> {out}/curve.json, curve.csv, curve.png")


@memory.command("tokenizers")
@click.option("--task", "-t", "task_name", required=True)
@click.option("--passages", type=int, default=100, show_default=True, help="Size of the training slice.")
@click.option("--steps", type=int, default=60, show_default=True)
@click.option("-P", "provider_params", multiple=True, metavar="KEY=VALUE", help="llm_memory setting; repeatable.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def tokenizers(task_name, passages, steps, provider_params, out):
    """Compare the tiny base's tokenizer choices (corpus BPE, MiniLM WordPiece, MiniLM warm start) on one slice."""
    from rag_bench.api import load_task, table

    from .evaluation import tokenizer_study

    params = settings(provider_params)
    task = load_task(task_name)
    rows = tokenizer_study(task.corpus, task.split("train"), params, out, passages=passages, steps=steps)
    write_json_atomic(out / "tokenizers.json", rows)
    click.echo(table(list(rows[0]), [[f"{v:.3f}" if isinstance(v, float) else v for v in r.values()] for r in rows]))

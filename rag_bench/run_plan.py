"""A run's configuration, resolved once against the registry and its task: the plan `rag-bench run` executes,
its config hash and run folder, and the manifest a new run folder starts with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import RagBenchError
from .evaluate import selected_metrics
from .jsonl import fingerprint
from .manifest import now, software
from .metric import Metric
from .preparation import build_provider, build_reader
from .provider import EvidenceProvider, provider_metadata
from .reader import Reader
from .registry import registry
from .task import Task
from .task_store import load_task
from .types import Question


@dataclass
class RunConfig:
    """Everything that defines a run; equal configs share a run directory."""

    provider: str
    task: str
    split: str | None = None
    limit: int | None = None
    ks: tuple[int, ...] | None = None
    #: Evidence texts the reader sees (the top of the ranking); at most the largest k.
    reader_k: int = 5
    provider_params: dict[str, str] = field(default_factory=dict)
    reader: str = "none"
    reader_params: dict[str, str] = field(default_factory=dict)
    judges: tuple[str, ...] = ()
    judge_params: dict[str, str] = field(default_factory=dict)
    batch_size: int = 32
    seed: int = 0
    runs_dir: Path = Path("runs")
    overwrite: bool = False
    #: Failed reader or judge calls in a row after which the run stops as `failed` (None or 0: never).
    max_consecutive_failures: int | None = 10
    #: Provide the next batch while the reader reads this one (False: one after the other). Results are the same.
    overlap: bool = True


def split_reader_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`openai:gpt-4o-mini` -> ("openai", {"model": "gpt-4o-mini"})."""
    name, sep, model = spec.partition(":")
    return name, ({"model": model} if sep and model else {})


def config_hash(cfg: RunConfig, provider: EvidenceProvider, reader: Reader, task: Task, split: str, ks: Sequence[int],
                reader_k: int) -> str:
    """The run's identity: everything that decides its records (not runtime settings such as batch size)."""
    key = {
        "provider": cfg.provider,
        "provider_version": provider.version,
        "provider_settings": provider.settings(),
        "task": task.name,
        "task_version": task.version,
        "task_files": task.files_sha256,
        "split": split,
        "limit": cfg.limit,
        "ks": list(ks),
        "reader_k": reader_k,
        "reader": cfg.reader,
        "reader_settings": reader.answer_settings(),
        "seed": cfg.seed,
    }
    return fingerprint(key, 12)


def run_dir_for(cfg: RunConfig, task: Task, digest: str, split: str) -> Path:
    """`<runs>/<task>/<provider>__<split>__<reader>__<config hash>`."""
    reader = cfg.reader.replace(":", "-").replace("/", "_")
    return cfg.runs_dir / task.name / f"{cfg.provider}__{split}__{reader}__{digest}"


def resolve_ks(cfg: RunConfig, task: Task) -> tuple[int, ...]:
    ks = tuple(sorted(set(cfg.ks or task.card.k)))
    if not ks or ks[0] < 1:
        raise RagBenchError(f"-k values must be positive integers, got {list(ks)}")
    if task.corpus and ks[-1] > len(task.corpus):
        raise RagBenchError(f"-k {ks[-1]} is larger than the corpus of {task.name} ({len(task.corpus)} passages)")
    return ks


def resolve_reader_k(cfg: RunConfig, ks: Sequence[int]) -> int:
    """The reader depth a run uses: `--reader-k`, capped at the ranking depth (the largest k)."""
    if cfg.reader_k < 1:
        raise RagBenchError(f"--reader-k must be at least 1, got {cfg.reader_k}")
    return min(cfg.reader_k, max(ks))


@dataclass
class RunPlan:
    """A configuration resolved against the registry and its task: what would run, and in which folder."""

    provider: EvidenceProvider
    reader: Reader
    task: Task
    split: str
    questions: list[Question]
    ks: tuple[int, ...]
    digest: str
    path: Path
    reader_k: int
    #: Every metric the run scores (the always-on ones and the named judges), resolved from the registry once.
    metrics: dict[str, Metric]
    #: The distributions that registered the provider and the reader, for the manifest.
    provider_plugin: str | None
    reader_plugin: str | None

    def judges(self, names: Sequence[str]) -> list[Metric]:
        """The judges named with --judges, in that order."""
        return [self.metrics[name] for name in names]


def plan_run(cfg: RunConfig) -> RunPlan:
    """Check a configuration and find its run folder without running anything (the task is prepared if needed)."""
    if cfg.batch_size < 1:
        raise RagBenchError("--batch-size must be at least 1")
    if cfg.limit is not None and cfg.limit < 1:
        raise RagBenchError("--limit must be at least 1")
    provider = build_provider(cfg.provider, cfg.provider_params)
    reader = build_reader(cfg.reader, cfg.reader_params)
    reg = registry()
    metrics = selected_metrics(reg.metrics, cfg.judges)  # an unknown judge fails before any work
    task = load_task(cfg.task)
    split = cfg.split or task.card.default_split
    questions = task.split(split)
    if cfg.limit is not None:
        questions = questions[: cfg.limit]
    if not questions:
        raise RagBenchError(f"task {task.name} split {split!r} has no questions")
    ks = resolve_ks(cfg, task)
    reader_k = resolve_reader_k(cfg, ks)
    digest = config_hash(cfg, provider, reader, task, split, ks, reader_k)
    return RunPlan(provider, reader, task, split, questions, ks, digest, run_dir_for(cfg, task, digest, split), reader_k,
                   metrics, reg.providers.entries[cfg.provider].plugin, reg.readers.entries[cfg.reader].plugin)


def new_manifest(cfg: RunConfig, plan: RunPlan, argv: Sequence[str] | None) -> dict[str, Any]:
    """The manifest a new run folder starts with: what ran, on what, with which software."""
    provider, reader, task, split = plan.provider, plan.reader, plan.task, plan.split
    return {
        "config_hash": plan.digest,
        "command": list(argv) if argv is not None else None,
        "created": now(),
        "software": software(),
        "task": {
            "name": task.name,
            "version": task.version,
            "files_sha256": task.files_sha256,
            "sources_sha256": task.source_sha256,
            "split": split,
            "limit": cfg.limit,
            "questions": len(plan.questions),
            "passages": task.num_passages,
        },
        "provider": {"name": cfg.provider, "version": provider.version, "settings": provider.settings(),
                     "plugin": plan.provider_plugin,
                     "runtime_settings": list(provider.runtime_settings),
                     "metadata": provider_metadata(cfg.provider, provider)},
        "reader": {"name": cfg.reader, "settings": reader.settings(), "plugin": plan.reader_plugin,
                   "runtime_settings": list(reader.runtime_settings)},
        "ks": list(plan.ks),
        "reader_k": plan.reader_k,
        "judges": list(cfg.judges),
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
    }

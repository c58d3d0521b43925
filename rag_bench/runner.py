"""`rag-bench run`: provider x task x split x reader -> a resumable run directory."""

from __future__ import annotations

import os
import random
import resource
import sys
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from tqdm.auto import tqdm

from .errors import RagBenchError
from .diagnostics import FailureLog
from .evaluate import add_judgements, compute_metrics
from .judging import Judge, Judgement, judge_questions
from .jsonl import fingerprint
from .locks import exclusive
from .lookahead import Lookahead
from .manifest import now, software
from .metric import RunContext
from .params import json_ready
from .plugins import warn_about_broken_plugins
from .preparation import build_provider, build_reader, prepare_provider
from .provider import EvidenceProvider, provide_evidence, provider_metadata
from .reader import Reader, checked_answers, reader_fingerprint
from .registry import registry
from .run_dir import RunDir
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


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RagBenchError(f"cannot write to the runs directory {folder}: {exc.strerror}; pass --runs-dir DIR") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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


def make_record(question: Question, evidence: Any, answer: Any, provide_ms: float, read_ms: float) -> dict[str, Any]:
    timings = {"provide": provide_ms, "read": read_ms, "total": provide_ms + read_ms}
    for stage, ms in evidence.timings_ms.items():
        if stage != "total":  # a provider's own per-question total is already `provide`
            timings[f"provide.{stage}"] = ms
    failed = answer.error is not None
    return {
        "qid": question.qid,
        "question": question.text,
        "answers": list(question.answers),
        "gold_doc_ids": list(question.gold_doc_ids),
        "hits": [[hit.doc_id, float(hit.score)] for hit in evidence.hits],
        "evidence": list(evidence.evidence),
        "provider_info": json_ready(evidence.info),
        "answer": answer.answer,
        "reader_error": answer.error,
        "reader_info": json_ready(answer.info),
        "usage": answer.usage,
        "timings_ms": timings,
        "status": "failed" if failed else "ok",
    }


def sum_usage(usages: Iterable[dict[str, Any] | None]) -> dict[str, float]:
    """Token counts (and `cost_usd` where a price is set) summed over usage dicts (a record's or a judgement's)."""
    total: dict[str, float] = {}
    for usage in usages:
        for key, value in (usage or {}).items():
            if isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total


@dataclass
class RunResult:
    path: Path
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    computed: int


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


def plan_run(cfg: RunConfig) -> RunPlan:
    """Check a configuration and find its run folder without running anything (the task is prepared if needed)."""
    if cfg.batch_size < 1:
        raise RagBenchError("--batch-size must be at least 1")
    if cfg.limit is not None and cfg.limit < 1:
        raise RagBenchError("--limit must be at least 1")
    provider = build_provider(cfg.provider, cfg.provider_params)
    reader = build_reader(cfg.reader, cfg.reader_params)
    for judge in cfg.judges:
        registry().metrics.get(judge)  # an unknown judge fails before any work
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
    return RunPlan(provider, reader, task, split, questions, ks, digest, run_dir_for(cfg, task, digest, split), reader_k)


def execute(cfg: RunConfig, argv: Sequence[str] | None = None) -> RunResult:
    """Run (or resume) one configuration and return its metrics."""
    warn_about_broken_plugins()
    plan = plan_run(cfg)
    check_writable(cfg.runs_dir)
    busy = (f"another rag-bench process is running this configuration ({plan.path}); "
            "wait for it to finish or stop it, then run the command again")
    with exclusive(cfg.runs_dir / ".locks" / f"{plan.task.name}__{plan.path.name}.lock", busy, wait=False):
        return _execute_planned(cfg, plan, argv)


def _execute_planned(cfg: RunConfig, plan: RunPlan, argv: Sequence[str] | None) -> RunResult:
    provider, reader, task, split, questions, ks, digest = (
        plan.provider, plan.reader, plan.task, plan.split, plan.questions, plan.ks, plan.digest)
    run = RunDir(plan.path)
    seed_everything(cfg.seed)

    ctx = RunContext(
        task=task,
        split=split,
        ks=ks,
        provider=cfg.provider,
        reader=cfg.reader,
        reader_answers=reader.answers,
        reader_settings=reader.settings(),
        judge_settings=dict(cfg.judge_params),
        max_consecutive_failures=cfg.max_consecutive_failures,
    )
    reader.limit_consecutive_failures(cfg.max_consecutive_failures)
    reader.preflight()
    reader.prepare(task)
    for judge in cfg.judges:
        registry().metrics.get(judge).preflight(ctx)
    # A reader that queues its calls (`Reader.queues_reads`) gets the next batch before this one is back, so
    # its endpoint is not idle between batches; records are still written batch by batch, in question order.
    reads_ahead = 1 if cfg.overlap and reader.queues_reads else 0
    session: dict[str, Any] = {"started": now(), "provide_overlaps_read": cfg.overlap, "reads_queued_ahead": reads_ahead}
    prepare_info = prepare_provider(cfg.provider, provider, task)
    session.update(prepare_info)

    if cfg.overwrite:  # only now: a failed preflight or preparation keeps the earlier run
        run.reset()
    run.path.mkdir(parents=True, exist_ok=True)
    manifest = run.read_manifest() if run.exists() else _new_manifest(cfg, plan, argv)
    check_reader_fingerprint(manifest, reader_fingerprint(cfg.reader, reader), run.path)
    manifest["status"] = "running"
    manifest.setdefault("sessions", []).append(session)
    run.clear_metrics()
    run.write_manifest(manifest)

    done = run.read_records()
    todo = [q for q in questions if done.get(q.qid, {}).get("status") != "ok"]
    computed = 0
    streak = 0  # reader failures in a row, in question order
    log = FailureLog(run.error_log_path)
    # Batches handed to the reader and not yet written: (questions, evidence, provide seconds, answers, sent at).
    reads: deque[tuple[list[Question], list[Any], float, Future, float]] = deque()

    def provide(batch: list[Question]) -> list[Any]:
        return provide_evidence(provider, batch, ks[-1], plan.reader_k, name=cfg.provider)

    def write_oldest(bar: tqdm) -> None:
        nonlocal computed, streak
        batch, provided, provide_s, future, sent = reads[0]
        answers = checked_answers(reader, batch, future.result())
        read_ms = (time.perf_counter() - sent) * 1000 / len(batch)
        provide_ms = provide_s * 1000 / len(batch)
        records = [make_record(q, ev, ans, ev.timings_ms.get("total", provide_ms), ans.info.get("latency_ms", read_ms))
                   for q, ev, ans in zip(batch, provided, answers)]
        run.append_records(records)
        reads.popleft()
        log.write_records(records)
        computed += len(batch)
        bar.update(len(batch))
        streak = failure_streak(streak, records)
        if cfg.max_consecutive_failures and streak >= cfg.max_consecutive_failures:
            raise RagBenchError(reader_down(cfg, reader, streak, records))

    loop_started = time.perf_counter()
    try:
        with tqdm(total=len(questions), initial=len(questions) - len(todo), desc=f"{cfg.provider} on {task.name}/{split}", unit="q") as bar:
            batches = [todo[start : start + cfg.batch_size] for start in range(0, len(todo), cfg.batch_size)]
            # The next batch's provide runs while the reader reads this one; leaving the block waits for it.
            with Lookahead(provide, batches, ahead=1 if cfg.overlap else 0, name="rag-bench-provide") as provided_batches:
                provided_iter = iter(provided_batches)
                while True:
                    try:
                        batch, provided, provide_s = next(provided_iter)
                    except StopIteration:
                        break
                    except Exception:
                        while reads:  # a failed (or short) provide keeps the answers of the batch already being read
                            write_oldest(bar)
                        raise
                    sent = time.perf_counter()
                    reads.append((batch, provided, provide_s, reader.submit(batch, [p.evidence[: plan.reader_k] for p in provided]), sent))
                    while len(reads) > reads_ahead:
                        write_oldest(bar)
                while reads:
                    write_oldest(bar)
    except BaseException as exc:
        for *_, future, _sent in reads:
            future.cancel()  # a stopped run sends none of its unwritten batches' queued calls
        session["question_loop_s"] = round(time.perf_counter() - loop_started, 3)
        _stopped(run, manifest, session, exc, provider, reader)
        raise
    # The loop alone (first provide to last record written), without setup, metrics or judges: what the
    # reader's concurrency bounds.
    session["question_loop_s"] = round(time.perf_counter() - loop_started, 3)
    try:
        result = _finish(cfg, plan, run, manifest, session, ctx, log)
    except BaseException as exc:
        _stopped(run, manifest, session, exc, provider, reader)
        raise
    _close(provider, reader)
    return RunResult(run.path, result, manifest, computed)


def failure_streak(streak: int, records: Sequence[dict[str, Any]]) -> int:
    """Failed records in a row (in question order) after `records`, given the streak before them."""
    for record in records:
        streak = streak + 1 if record.get("status") == "failed" else 0
    return streak


def reader_down(cfg: RunConfig, reader: Reader, streak: int, records: Sequence[dict[str, Any]]) -> str:
    """The error that stops a run whose reader failed `streak` questions in a row."""
    where = reader.settings().get("base_url") or cfg.reader
    last = next((r.get("reader_error") for r in reversed(records) if r.get("status") == "failed"), None)
    return (f"the reader endpoint {where} failed {streak} questions in a row (last: {last}); check that it is up, "
            "then run the same command again to resume (--max-consecutive-failures sets the limit)")


def _close(provider: EvidenceProvider, reader: Reader) -> None:
    """Close both, even when the first raises."""
    try:
        provider.close()
    finally:
        reader.close()


def _stopped(run: RunDir, manifest: dict[str, Any], session: dict[str, Any], exc: BaseException,
             provider: EvidenceProvider, reader: Reader) -> None:
    """Record why the run stopped (`interrupted` or `failed`, with the error) and close provider and reader."""
    manifest["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    manifest["error"] = f"{type(exc).__name__}: {exc}"
    session["ended"] = now()
    try:
        run.write_manifest(manifest)
    finally:
        _close(provider, reader)


def _finish(cfg: RunConfig, plan: RunPlan, run: RunDir, manifest: dict[str, Any], session: dict[str, Any],
            ctx: RunContext, log: FailureLog) -> dict[str, Any]:
    """After the question loop: footprint, metrics, judges; writes metrics.json and the final manifest."""
    provider, task, split, questions, ks, digest = plan.provider, plan.task, plan.split, plan.questions, plan.ks, plan.digest
    session["ended"] = now()
    session["peak_rss_bytes"] = peak_rss_bytes()
    footprint = {key: int(value) for key, value in provider.footprint().items()}
    latest = run.read_records()
    records = [latest[q.qid] for q in questions]
    first = manifest["sessions"][0]
    ctx.efficiency = {
        "prepare_s": session["build_s"],
        "footprint_bytes": footprint,
        "peak_rss_bytes": max(s.get("peak_rss_bytes", 0) for s in manifest["sessions"]),
        "num_passages": task.num_passages,
        "first_session": first,
    }
    metrics = compute_metrics(records, questions, ctx, cfg.judges)  # before any judge is paid for
    judgements = run_judges(cfg, records, questions, ctx, run, log)
    add_judgements(metrics, questions, judgements)
    metrics["run"] = {"config_hash": digest, "task": task.name, "split": split, "provider": cfg.provider, "reader": cfg.reader, "ks": list(ks)}
    manifest.pop("error", None)
    manifest["footprint_bytes"] = footprint
    manifest["usage"] = sum_usage(r.get("usage") for r in records)
    manifest["judges"], manifest["judge_settings"] = list(cfg.judges), dict(cfg.judge_params)
    manifest["judge_usage"] = {name: sum_usage(j.usage for j in judged.values()) for name, judged in judgements.items()}
    unscored = sum(info["unscored"] for info in metrics.get("judges", {}).values())
    manifest["status"] = "complete" if metrics["counts"]["failed"] == 0 and unscored == 0 else "complete_with_failures"
    manifest["ended"] = now()
    run.write_metrics(metrics)
    run.write_manifest(manifest)
    return metrics


def run_judges(cfg: RunConfig, records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext,
               run: RunDir, log: FailureLog) -> dict[str, dict[str, Judgement]]:
    """Per judge (`rag_bench.judging.Judge`) named with --judges, the judgement of each answered question."""
    ok = [(r, q) for r, q in zip(records, questions) if r.get("status") == "ok"]
    judgements: dict[str, dict[str, Judgement]] = {}
    if not ctx.reader_answers:  # nothing to judge (the preflight said so)
        return judgements
    with log.capture_libraries():
        for name in cfg.judges:
            judge = registry().metrics.get(name)
            if isinstance(judge, Judge):
                judgements[name] = judge_questions(name, judge, [r for r, _ in ok], [q for _, q in ok], ctx, run, log)
    return judgements


def check_reader_fingerprint(manifest: dict[str, Any], found: dict[str, Any], path: Path) -> None:
    """Record the reader's fingerprint in the manifest; a resumed run whose reader answers differently stops."""
    section = manifest.setdefault("reader", {})
    recorded = section.get("fingerprint")
    if recorded is not None and recorded != found:
        changed = sorted(k for k in recorded.keys() | found.keys() if recorded.get(k) != found.get(k))
        raise RagBenchError(f"{path}: the reader differs from the one this run started with ({', '.join(changed)}); "
                            "pass --overwrite to start the run again")
    section["fingerprint"] = found


def _new_manifest(cfg: RunConfig, plan: RunPlan, argv: Sequence[str] | None) -> dict[str, Any]:
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
                     "plugin": registry().providers.entries[cfg.provider].plugin,
                     "runtime_settings": list(provider.runtime_settings),
                     "metadata": provider_metadata(cfg.provider, provider)},
        "reader": {"name": cfg.reader, "settings": reader.settings(), "plugin": registry().readers.entries[cfg.reader].plugin,
                   "runtime_settings": list(reader.runtime_settings)},
        "ks": list(plan.ks),
        "reader_k": plan.reader_k,
        "judges": list(cfg.judges),
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
    }

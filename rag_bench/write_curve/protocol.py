"""The write protocol itself: prepare without the held-out passages, write them in, score new and old questions.

Scores come from the harness's scoring functions (`rag_bench.scoring`), on the
same definitions as a run's metrics: ``recall@k`` is the share of a
question's gold passages in the top k hits (routing recall),
``evidence_rougeL`` the ROUGE-L F1 of the top-1 evidence text against the
gold evidence, ``answer_recall@5`` whether a gold answer occurs in the first
five evidence texts (DPR's test). Every aggregate carries a bootstrap 95%
interval; differences between two states of a provider are paired over the
same questions.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from ..errors import RagBenchError
from ..leaderboard.significance import paired_bootstrap
from ..provider import EvidenceProvider, WriteCost, can_write, provide_evidence, provider_metadata
from ..runner import prepare_provider, seed_everything
from ..scoring.bootstrap import mean_with_ci
from ..scoring.evidence import rouge_l
from ..scoring.retrieval import has_answer, recall_at
from ..task import Task
from ..types import Passage, Question
from .heldout import HeldOut, task_without

#: The figures of every scored set, in display order.
METRICS = ("recall@1", "recall@5", "evidence_rougeL", "answer_recall@5")
#: Ranking depth asked of the provider, and the evidence texts it is asked to write (``evidence_k``).
DEPTH = 5
#: The headline figure of the report's tables and plots.
HEADLINE = "recall@5"
DEFAULT_STEPS = (0, 10, 25, 50, 100, 200)
FORMAT = 1

#: Per question id, its scores by metric.
Scores = dict[str, dict[str, float]]
Log = Callable[[str], None]


def score_one(question: Question, hits: Sequence[str], evidence: Sequence[str]) -> dict[str, float]:
    """One question's figures from its ranked doc ids and evidence texts (a metric the question cannot have, e.g.
    ROUGE-L without gold evidence, or one that needs texts past those given, is left out, never zero)."""
    out: dict[str, float] = {}
    gold = set(question.gold_doc_ids)
    if gold:
        out["recall@1"] = recall_at(hits, gold, 1)
        out["recall@5"] = recall_at(hits, gold, 5)
    if question.gold_evidence and len(evidence) >= min(1, len(hits)):
        out["evidence_rougeL"] = rouge_l(evidence[0], " ".join(question.gold_evidence)) if evidence else 0.0
    if question.answers and len(evidence) >= min(5, len(hits)):
        out["answer_recall@5"] = float(any(has_answer(text, question.answers) for text in evidence[:5]))
    return out


def score_questions(provider: EvidenceProvider, questions: Sequence[Question], name: str, batch_size: int,
                    label: str) -> Scores:
    """Ask `provider` for evidence on `questions` (in batches, with a progress bar) and score each question."""
    out: Scores = {}
    with tqdm(total=len(questions), unit="question", desc=f"{name}: {label}", leave=False) as bar:
        for start in range(0, len(questions), batch_size):
            batch = list(questions[start : start + batch_size])
            for question, given in zip(batch, provide_evidence(provider, batch, DEPTH, DEPTH, name)):
                out[question.qid] = score_one(question, [h.doc_id for h in given.hits], list(given.evidence))
            bar.update(len(batch))
    return out


def figures(scores: Scores, questions: Sequence[Question]) -> dict[str, Any]:
    """Each metric's mean over `questions` with its 95% interval (JSON-ready), and the number of questions."""
    out: dict[str, Any] = {"questions": len(questions)}
    for metric in METRICS:
        values = [scores[q.qid][metric] for q in questions if metric in scores.get(q.qid, {})]
        if values:
            out[metric] = mean_with_ci(values).to_json()
    return out


def per_metric(scores: Scores, questions: Sequence[Question], metric: str) -> dict[str, float]:
    """`metric` by question id, for the questions of `questions` that have it (for paired comparisons)."""
    return {q.qid: scores[q.qid][metric] for q in questions if metric in scores.get(q.qid, {})}


def paired(after: Scores, before: Scores, questions: Sequence[Question]) -> dict[str, Any]:
    """Per metric, the mean per-question difference `after - before` with its paired-bootstrap 95% interval."""
    out = {}
    for metric in METRICS:
        result = paired_bootstrap(per_metric(after, questions, metric), per_metric(before, questions, metric))
        if result is not None:
            out[metric] = {"value": result.mean_diff, "ci95": list(result.ci95), "n": result.n}
    return out


def retention(after: dict[str, Any], before: dict[str, Any]) -> dict[str, float | None]:
    """Per metric, figure after / figure before (None where the figure before is 0 or missing: nothing to keep)."""
    out: dict[str, float | None] = {}
    for metric in METRICS:
        now, then = (after.get(metric) or {}).get("value"), (before.get(metric) or {}).get("value")
        out[metric] = now / then if now is not None and then and not math.isnan(then) else None
    return out


def counted_bytes(provider: EvidenceProvider) -> int:
    """The provider's footprint in bytes, the parts that count (not ``extra_*``), as the efficiency metric counts it."""
    return sum(int(v) for k, v in (provider.footprint() or {}).items() if not k.startswith("extra_"))


def timed_write(provider: EvidenceProvider, name: str, passages: Sequence[Passage], steps: int | None,
                seed: int) -> dict[str, Any]:
    """Call the provider's `write` and measure it: wall-clock seconds and footprint growth, in all and per passage,
    beside what the provider reports (`WriteCost`)."""
    before = counted_bytes(provider)
    seed_everything(seed)
    start = time.perf_counter()
    cost = provider.write(list(passages), steps=steps)
    wall = time.perf_counter() - start
    if cost is None:
        cost = WriteCost()
    if not isinstance(cost, WriteCost):
        raise RagBenchError(f"provider {name}: write() must return a rag_bench.provider.WriteCost, got {type(cost).__name__}")
    grown = counted_bytes(provider) - before
    n = len(passages)
    return {"passages": n, "steps": steps, "seconds": wall, "seconds_per_doc": wall / n, "bytes": grown,
            "bytes_per_doc": grown / n,
            "provider": {"seconds": cost.seconds, "bytes_added": cost.bytes_added, "steps": cost.steps, "info": cost.info}}


def cannot_write(name: str) -> dict[str, Any]:
    """The result for a provider without the write hook."""
    return {"can_write": False,
            "reason": f"{name} does not implement the optional write(passages, steps) hook of EvidenceProvider"}


def write_curve(task: Task, name: str, make: Callable[[], EvidenceProvider], held: HeldOut,
                steps: Sequence[int] = DEFAULT_STEPS, batch_size: int = 32, old_limit: int | None = None,
                seed: int = 0, log: Log = lambda line: None) -> dict[str, Any]:
    """Run the protocol for one provider (`make` builds a fresh, unprepared instance of it); a JSON-ready dict.

    The reference is the provider prepared on the whole `task`; every other
    state starts from the provider prepared on ``task_without(held)`` (a fresh
    instance each time, so one point's write never leaks into the next). The
    write curve writes all held-out passages at once, at each step count of
    `steps` for a provider with ``write_takes_steps``, else once. With more
    than one batch, the forgetting curve writes them batch by batch at the
    largest step count and scores, after each, the original passages and
    every batch written so far.
    """
    first = make()
    if not can_write(first):
        first.close()
        return {"format": FORMAT, "held_out": held.describe(), **cannot_write(name)}
    takes_steps = bool(type(first).write_takes_steps)
    points: list[int | None] = sorted(set(steps)) if takes_steps else [None]
    if takes_steps and (not points or points[0] < 0):
        raise RagBenchError("--steps: give at least one step count, all >= 0")
    view = task_without(task, held.doc_ids)
    new_q, old_q = held.new_questions, held.old_questions[:old_limit] if old_limit else held.old_questions
    both = new_q + old_q
    started = time.perf_counter()

    log(f"{name}: reference, prepared on the whole of {task.name}")
    try:
        seed_everything(seed)
        reference_prep = prepare_provider(name, first, task)
        metadata = provider_metadata(name, first)
        reference = score_questions(first, both, name, batch_size, "reference")
    finally:
        first.close()

    def prepared_view() -> tuple[EvidenceProvider, dict[str, Any]]:
        provider = make()
        seed_everything(seed)
        return provider, prepare_provider(name, provider, view)

    log(f"{name}: prepared without the {len(held.passages)} held-out passages ({view.name})")
    curve = []
    for index, count in enumerate(points):
        provider, prep = prepared_view()
        try:
            if index == 0:
                view_prep = prep
                before = score_questions(provider, both, name, batch_size, "before writing")
                before_old = figures(before, old_q)
            log(f"{name}: writing {len(held.passages)} passages" + (f" ({count} steps)" if count is not None else ""))
            cost = timed_write(provider, name, held.passages, count, seed)
            after = score_questions(provider, both, name, batch_size, "after writing")
        finally:
            provider.close()
        old_after = figures(after, old_q)
        curve.append({"steps": count, "cost": cost, "new": figures(after, new_q), "old": old_after,
                      "gap": paired(after, reference, new_q), "retention": retention(old_after, before_old),
                      "old_change": paired(after, before, old_q)})
    forgetting = None
    if len(held.batches) > 1:
        forgetting = forgetting_curve(name, prepared_view, held, old_q, before, reference, points[-1], batch_size,
                                      seed, log)
    return {
        "format": FORMAT, "can_write": True, "write_takes_steps": takes_steps,
        "provider_version": type(first).version, "settings": first.settings(), "metadata": metadata,
        "held_out": held.describe(), "view_task": view.name, "metrics": list(METRICS), "depth": DEPTH,
        "old_questions_scored": len(old_q),
        "reference": {"prepare": portable(reference_prep), "new": figures(reference, new_q),
                      "old": figures(reference, old_q)},
        "before": {"prepare": portable(view_prep), "new": figures(before, new_q), "old": before_old},
        "write_curve": curve, "forgetting": forgetting, "seconds": time.perf_counter() - started,
    }


def portable(prepared: dict[str, Any]) -> dict[str, Any]:
    """A preparation record for a committed result: the cache folder by its name, not this machine's path."""
    return {**prepared, "workdir": Path(prepared["workdir"]).name} if "workdir" in prepared else prepared


def forgetting_curve(name: str, prepared_view: Callable[[], tuple[EvidenceProvider, dict]], held: HeldOut,
                     old_q: Sequence[Question], before: Scores, reference: Scores, steps: int | None, batch_size: int,
                     seed: int, log: Log) -> dict[str, Any]:
    """Write the batches one after the other into one provider; after each, score the original passages' questions
    and those of every batch written so far. Retention of a set is its figure now over its figure when it was last
    new: before any write for the original passages, right after its own write for a batch."""
    provider, _ = prepared_view()
    sets: dict[str, list[Question]] = {"original": list(old_q)}
    baseline: dict[str, dict[str, Any]] = {"original": figures(before, old_q)}
    rows = []
    try:
        for j, (batch, questions) in enumerate(zip(held.batches, held.batch_questions)):
            label = f"batch {j + 1}"
            log(f"{name}: writing {label} of {len(held.batches)} ({len(batch)} passages)")
            cost = timed_write(provider, name, batch, steps, seed)
            sets[label] = list(questions)
            asked = [q for group in sets.values() for q in group]
            scores = score_questions(provider, asked, name, batch_size, f"after {label}")
            scored = []
            for set_name, group in sets.items():
                now = figures(scores, group)
                if set_name == label:
                    baseline[set_name] = now
                scored.append({"name": set_name, "figures": now, "retention": retention(now, baseline[set_name]),
                               "reference": figures(reference, group)})
            rows.append({"after_batch": j + 1, "cost": cost, "sets": scored})
    finally:
        provider.close()
    return {"steps": steps, "batches": len(held.batches), "points": rows}


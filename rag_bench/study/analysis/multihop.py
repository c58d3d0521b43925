"""Multi-hop analysis: does a provider find one hop or both, per question type?

For every finished run (or published result) of a task whose questions carry
two or more gold passages and a ``meta["type"]`` (hotpotqa_5k: bridge or
comparison), and for each cut-off k, each question lands in one bucket:

- ``both``: every gold passage is in the top k (= all_gold@k),
- ``one``: some but not all of them are (= hit@k and not all_gold@k),
- ``neither``: none is (= not hit@k).

Where the run's records are at hand, ``one`` is split by *which* hop was
found. A gold passage is *answer-bearing* when a gold answer, normalised as
SQuAD does, occurs in its title + text as a whole-word sequence; "yes"/"no"
answers are judgements, never spans, so they make no passage answer-bearing.
A question whose gold passages are all answer-bearing, or none of them, has
no answer hop to tell apart: it goes to ``answer_in_both`` /
``answer_in_neither`` instead of ``answer_passage`` / ``other_passage``.

Per-question values come from the stored scores (``hit@k``, ``all_gold@k``)
when the run has them at k, else from the records' ranked hits. The rows of
the focus provider (llm_memory) are compared with every other row of the same
split and reader by a paired bootstrap on the per-question values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import RagBenchError
from ...leaderboard.collect import Entry
from ...leaderboard.significance import paired_bootstrap
from ...scoring.answer import normalize_answer
from ...scoring.bootstrap import mean_with_ci
from ...scoring.retrieval import all_gold_at, hit_at
from ...task import Task
from ...types import Passage, Question

FOCUS = "llm_memory"
ALL = "all"
DEFAULT_KS = (2, 5)
BUCKETS = ("both", "one", "neither")
#: How a question of the ``one`` bucket splits when records are available.
ONE_DETAIL = ("answer_passage", "other_passage", "answer_in_neither", "answer_in_both")
#: Answers that are judgements rather than spans of a passage.
NON_SPAN_ANSWERS = frozenset({"yes", "no"})
DIFF_METRICS = ("hit", "all_gold")
ANSWER_BEARING_RULE = (
    "a gold passage is answer-bearing when a SQuAD-normalised gold answer occurs as whole words in its "
    "normalised title + text; yes/no answers make no passage answer-bearing"
)


@dataclass
class _Row:
    """One analysed entry: per-question values at each k, and ranked hits where records exist."""

    entry: Entry
    label: str
    qids: list[str]
    hit: dict[int, dict[str, float]]
    all_gold: dict[int, dict[str, float]]
    source: dict[int, str]
    ranked: dict[str, list[str]] | None


def select_entries(entries: Iterable[Entry], task: str) -> tuple[list[Entry], list[dict[str, Any]]]:
    """The entries of `task`, one per provider x reader x split: the latest (manifest "ended") is kept.

    Returns the kept entries and a note for each entry left out.
    """
    latest: dict[tuple[str, str, str], Entry] = {}
    dropped: list[Entry] = []
    for entry in entries:
        if entry.task != task:
            continue
        key = (entry.provider, entry.reader, entry.split)
        if key in latest:
            older, latest[key] = sorted((latest[key], entry), key=lambda e: e.date)
            dropped.append(older)
        else:
            latest[key] = entry
    notes = [
        {"provider": e.provider, "reader": e.reader, "split": e.split, "config_hash": e.config_hash,
         "date": e.date, "source": str(e.source),
         "kept_config_hash": latest[(e.provider, e.reader, e.split)].config_hash}
        for e in dropped
    ]
    return sorted(latest.values(), key=lambda e: (e.provider, e.reader, e.split)), notes


def answer_bearing(question: Question, passages: dict[str, Passage]) -> frozenset[str]:
    """The gold passages of `question` whose title + text holds a gold answer (see the module docstring)."""
    needles = {normalize_answer(a) for a in question.answers} - NON_SPAN_ANSWERS - {""}
    out = set()
    for doc_id in question.gold_doc_ids:
        passage = passages[doc_id]
        haystack = f" {normalize_answer(passage.title + ' ' + passage.text)} "
        if any(f" {needle} " in haystack for needle in needles):
            out.add(doc_id)
    return frozenset(out)


def one_hop_detail(found: set[str], gold: Sequence[str], bearing: frozenset[str]) -> str:
    """Which ``one`` sub-bucket a question with some but not all gold passages `found` falls in."""
    if not bearing:
        return "answer_in_neither"
    if bearing >= set(gold):
        return "answer_in_both"
    return "answer_passage" if found & bearing else "other_passage"


def _ranked_hits(entry: Entry) -> dict[str, list[str]] | None:
    ranked = {r["qid"]: [h[0] for h in r.get("hits") or []] for r in entry.records() if r.get("status") == "ok"}
    return ranked or None


def _per_question(entry: Entry, k: int, ranked: dict[str, list[str]] | None,
                  questions: dict[str, Question]) -> tuple[dict[str, float], dict[str, float], str]:
    """hit@k and all_gold@k by qid, from the stored scores when they have k, else from the ranked hits."""
    hit, all_gold = entry.scores.get(f"hit@{k}"), entry.scores.get(f"all_gold@{k}")
    if hit and all_gold:
        return hit, all_gold, "scores"
    stored = sorted(int(m.split("@")[1]) for m in entry.scores if m.startswith("all_gold@"))
    if ranked is None:
        raise RagBenchError(
            f"{entry.source}: {entry.provider} has no per-question hit@{k}/all_gold@{k} (stored cut-offs: "
            f"{', '.join(map(str, stored)) or 'none'}) and no records.jsonl to recompute them from; pass the "
            "run directory instead of a published result, or choose -k among the stored cut-offs"
        )
    kept = max(entry.manifest.get("ks") or [k])
    if k > kept:
        raise RagBenchError(
            f"{entry.source}: the run kept only the top {kept} hits, so @{k} cannot be computed; "
            f"choose -k up to {kept} or rerun with -k {k}"
        )
    gold = {qid: set(questions[qid].gold_doc_ids) for qid in ranked}
    return ({qid: hit_at(docs, gold[qid], k) for qid, docs in ranked.items()},
            {qid: all_gold_at(docs, gold[qid], k) for qid, docs in ranked.items()}, "records")


def _split_questions(task: Task, split: str) -> dict[str, Question]:
    questions = {q.qid: q for q in task.split(split)}
    if not any(q.meta.get("type") for q in questions.values()):
        raise RagBenchError(
            f"task {task.name} has no question types (meta['type']) in split {split}; the multi-hop analysis "
            "needs typed multi-hop questions, e.g. --task hotpotqa_5k"
        )
    return questions


def _check_qids(task: Task, questions: dict[str, Question], qids: Iterable[str], source: Any) -> None:
    for qid in qids:
        question = questions.get(qid)
        if question is None:
            raise RagBenchError(f"{source}: question {qid} is not in task {task.name}; "
                                "was the run made with another version of the task? Rerun it")
        if not question.meta.get("type"):
            raise RagBenchError(f"task {task.name}: question {qid} has no type (meta['type']); "
                                "every question needs one for the multi-hop analysis")
        if len(set(question.gold_doc_ids)) < 2:
            raise RagBenchError(f"task {task.name}: question {qid} has {len(set(question.gold_doc_ids))} gold "
                                "passage(s); the multi-hop analysis needs two or more per question")


def _labels(entries: list[Entry]) -> list[str]:
    labels = []
    for entry in entries:
        same = [e for e in entries if e.provider == entry.provider]
        if len(same) == 1:
            labels.append(entry.provider)
        elif len({e.split for e in same}) == 1:
            labels.append(f"{entry.provider} ({entry.reader})")
        else:
            labels.append(f"{entry.provider} ({entry.reader}, {entry.split})")
    return labels


def _share(values: Iterable[bool], n: int) -> float:
    return sum(values) / n


def _cell(row: _Row, kind: str, k: int, qids: list[str], questions: dict[str, Question],
          bearing: dict[str, frozenset[str]]) -> dict[str, Any]:
    hit = [row.hit[k][q] for q in qids]
    both = [row.all_gold[k][q] for q in qids]
    n = len(qids)
    one = [q for q in qids if row.hit[k][q] and not row.all_gold[k][q]]
    cell: dict[str, Any] = {
        "type": kind, "k": k, "n": n,
        "hit": mean_with_ci(hit).to_json(),
        "all_gold": mean_with_ci(both).to_json(),
        "shares": {"both": _share((v == 1.0 for v in both), n), "one": len(one) / n,
                   "neither": _share((v == 0.0 for v in hit), n)},
        "one_detail": None,
    }
    if row.ranked is not None:
        details = []
        for qid in one:
            gold = questions[qid].gold_doc_ids
            found = set(gold).intersection(row.ranked[qid][:k])
            if not found or found >= set(gold):
                raise RagBenchError(f"{row.entry.source}: stored scores and records.jsonl disagree on question "
                                    f"{qid} at k={k}; rerun the run (--overwrite) to rebuild its metrics")
            details.append(one_hop_detail(found, gold, bearing[qid]))
        cell["one_detail"] = {name: details.count(name) / n for name in ONE_DETAIL}
    return cell


def _differences(rows: list[_Row], types: dict[str, list[str]], ks: Sequence[int], focus: str) -> list[dict[str, Any]]:
    out = []
    for a in (r for r in rows if r.entry.provider == focus):
        for b in rows:
            if b.entry.provider == focus or (b.entry.split, b.entry.reader) != (a.entry.split, a.entry.reader):
                continue
            for kind, kind_qids in types.items():
                for k in ks:
                    for metric in DIFF_METRICS:
                        va, vb = getattr(a, metric)[k], getattr(b, metric)[k]
                        shared = set(kind_qids) & set(a.qids) & set(b.qids)
                        comparison = paired_bootstrap({q: va[q] for q in shared}, {q: vb[q] for q in shared})
                        if comparison is None:
                            continue
                        out.append({
                            "focus": a.label, "baseline": b.label, "type": kind, "k": k, "metric": f"{metric}@{k}",
                            "mean_diff": comparison.mean_diff, "ci95": list(comparison.ci95),
                            "p_value": comparison.p_value, "n": comparison.n, "significant": comparison.significant,
                        })
    return out


def _ks(ks: Sequence[int]) -> list[int]:
    out = list(dict.fromkeys(int(k) for k in ks))
    if not out or any(k < 1 for k in out):
        raise RagBenchError(f"-k {','.join(map(str, ks))}: expected one or more positive cut-offs, e.g. -k 2,5")
    return out


def multihop_table(entries: Iterable[Entry], task: str, ks: Sequence[int] = DEFAULT_KS,
                   focus: str = FOCUS, loaded: Task | None = None) -> dict[str, Any]:
    """The multi-hop analysis of every entry of `task` as a JSON-ready dict (see the module docstring).

    `loaded` is the prepared task (loaded with ``load_task(task)`` when not given). Rows hold one
    cell per question type ("all" first) and k, in the order of `ks`; `differences` holds
    focus provider minus each other row on hit@k and all_gold@k with paired-bootstrap intervals.
    """
    ks = _ks(ks)
    entries = list(entries)
    kept, dropped = select_entries(entries, task)
    if not kept:
        found = sorted({e.task for e in entries})
        raise RagBenchError(
            f"no finished runs or published results of task {task} (found: {', '.join(found) or 'none'}); "
            f"run `rag-bench run --provider bm25 --task {task}` first, or pass the folder that holds them"
        )
    if loaded is None:
        from ...task_store import load_task

        loaded = load_task(task)
    passages = loaded.passages_by_id
    rows: list[_Row] = []
    for entry, label in zip(kept, _labels(kept)):
        ranked = _ranked_hits(entry)
        questions = _split_questions(loaded, entry.split)
        _check_qids(loaded, questions, ranked or (), entry.source)
        row = _Row(entry, label, [], {}, {}, {}, ranked)
        for k in ks:
            row.hit[k], row.all_gold[k], row.source[k] = _per_question(entry, k, ranked, questions)
        row.qids = sorted(row.hit[ks[0]])
        _check_qids(loaded, questions, row.qids, entry.source)
        rows.append(row)

    all_questions = {q.qid: q for q in loaded.questions}
    analysed = {q for r in rows for q in r.qids}
    # Task order, as runs score questions: the bootstrap intervals then equal those in metrics.json.
    types: dict[str, list[str]] = {ALL: [qid for qid in all_questions if qid in analysed]}
    for qid in types[ALL]:
        types.setdefault(all_questions[qid].meta["type"], []).append(qid)
    types = {ALL: types.pop(ALL), **dict(sorted(types.items()))}
    bearing = {qid: answer_bearing(all_questions[qid], passages) for qid in types[ALL]}

    result_rows = []
    for row in rows:
        cells = []
        for kind, kind_qids in types.items():
            qids = [q for q in kind_qids if q in row.hit[ks[0]]]
            if qids:
                cells.extend(_cell(row, kind, k, qids, all_questions, bearing) for k in ks)
        e = row.entry
        result_rows.append({
            "label": row.label, "provider": e.provider, "reader": e.reader, "split": e.split,
            "config_hash": e.config_hash, "date": e.date, "source": str(e.source), "command": e.command,
            "focus": e.provider == focus, "values_from": {str(k): row.source[k] for k in ks},
            "records": row.ranked is not None, "cells": cells,
        })
    return {
        "task": task,
        "task_version": loaded.version,
        "ks": ks,
        "focus": focus,
        "types": {kind: len(qids) for kind, qids in types.items()},
        "answer_bearing_rule": ANSWER_BEARING_RULE,
        "rows": result_rows,
        "dropped": dropped,
        "differences": _differences(rows, types, ks, focus),
    }

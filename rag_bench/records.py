"""The rows of a run's records.jsonl: one per question, and the sums taken over them."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from .params import json_ready
from .types import Question


def make_record(question: Question, evidence: Any, answer: Any, provide_ms: float, read_ms: float) -> dict[str, Any]:
    """One question's record: its evidence (`ProvidedEvidence`), the reader's answer (`ReaderAnswer`), timings."""
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


def failure_streak(streak: int, records: Sequence[dict[str, Any]]) -> int:
    """Failed records in a row (in question order) after `records`, given the streak before them."""
    for record in records:
        streak = streak + 1 if record.get("status") == "failed" else 0
    return streak

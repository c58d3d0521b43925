"""The nouns every plugin shares: passages, questions, provided evidence, reader answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Passage:
    """One corpus entry; `doc_id` is unique within a task."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class Question:
    """One question of a task, with everything the metrics need to score it.

    `gold_doc_ids` are the passages that support the answer (the qrels);
    `gold_evidence` the sentences of those passages that contain the answer.
    `meta` holds task-specific fields (e.g. HotpotQA's question type).
    """

    qid: str
    text: str
    answers: tuple[str, ...]
    split: str
    gold_doc_ids: tuple[str, ...] = ()
    gold_evidence: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(slots=True)
class Hit:
    """A passage a provider ranked for a question; higher score is better.

    Slotted: a provider makes k of these per question, and a retriever's
    harness cost is mostly making them (benchmarks/bm25.py).
    """

    doc_id: str
    score: float


@dataclass
class ProvidedEvidence:
    """What a provider returns for one question.

    `hits` is the ranked list of passages (at most k) the provider chose;
    `evidence` the texts handed to the reader, usually one per hit (retrieved
    passage text, or generated evidence for a generative provider).
    `timings_ms` lets a provider split its latency into stages (e.g.
    ``{"routing": 3.1, "generation": 85.0}``); `info` carries anything else
    worth keeping in the record (JSON-serialisable).
    """

    hits: list[Hit]
    evidence: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReaderAnswer:
    """A reader's output for one question.

    `answer` is None when the reader produced none (the `none` reader, or a
    call that failed: then `error` says why). `usage` holds token counts.
    """

    answer: str | None
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

"""Training examples for the extractive reader, from a task's train split (DPR-style supervision).

Per question: its gold passages where a gold answer occurs in them (the span is
marked at every occurrence); `distant` more passages of the corpus that
contain a gold answer (distant supervision), taken from the top of a BM25
ranking of the corpus for the question; and `negatives` passages from the
same ranking that contain none (hard negatives, trained only for the
passage score). Everything is deterministic: corpus order breaks ties.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Sequence

from rag_bench.api import Passage, Question, has_answer

from .model import Window, tokenize_windows

#: BM25 candidates per question searched for distant positives and hard negatives.
CANDIDATES = 20


def passage_text(passage: Passage) -> str:
    """A passage as retrieval providers hand it to the reader: title, newline, text."""
    return f"{passage.title}\n{passage.text}" if passage.title else passage.text


def answer_spans(text: str, answers: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of every case-insensitive, word-bounded occurrence of a gold answer in `text`."""
    spans = set()
    for answer in answers:
        answer = answer.strip()
        if not answer:
            continue
        pattern = re.compile(r"(?<!\w)" + re.escape(answer) + r"(?!\w)", re.IGNORECASE)
        spans.update((m.start(), m.end()) for m in pattern.finditer(text))
    return sorted(spans)


def label_window(windows: list[Window], spans: list[tuple[int, int]]) -> Window | None:
    """The first window holding a gold span whole, with its start/end tokens marked; None if none does."""
    for window in windows:
        starts, ends = set(), set()
        for lo, hi in spans:
            first = next((i for i, o in enumerate(window.offsets) if o is not None and o[0] <= lo < o[1]), None)
            last = next((i for i, o in enumerate(window.offsets) if o is not None and o[0] < hi <= o[1]), None)
            if first is not None and last is not None and first <= last:
                starts.add(first)
                ends.add(last)
        if starts:
            return replace(window, starts=tuple(sorted(starts)), ends=tuple(sorted(ends)), positive=True)
    return None


def bm25_candidates(corpus: Sequence[Passage], questions: Sequence[Question], depth: int = CANDIDATES) -> list[list[int]]:
    """Corpus positions of the top `depth` BM25 passages per question (bm25s, English stopwords)."""
    import bm25s
    import numpy as np

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([passage_text(p) for p in corpus], stopwords="en", show_progress=False), show_progress=False)
    depth = min(depth, len(corpus))
    query_tokens = bm25s.tokenize([q.text for q in questions], stopwords="en", show_progress=False)
    docs, _ = retriever.retrieve(query_tokens, k=depth, show_progress=False, n_threads=1)
    return [[int(i) for i in row] for row in np.asarray(docs)]


def build_examples(tokenizer: Any, corpus: Sequence[Passage], questions: Sequence[Question], *, distant: int,
                   negatives: int, max_length: int, stride: int) -> tuple[list[Window], dict[str, int]]:
    """The training windows and counts of what went in (`gold`, `distant`, `negative`, `skipped` questions)."""
    by_id = {p.doc_id: p for p in corpus}
    candidates = bm25_candidates(corpus, questions) if (distant or negatives) and corpus else [[] for _ in questions]
    examples: list[Window] = []
    counts = {"questions": len(questions), "gold": 0, "distant": 0, "negative": 0, "skipped": 0}
    for question, ranked in zip(questions, candidates):
        answers = [a for a in question.answers if a.strip()]
        gold = [by_id[d] for d in question.gold_doc_ids if d in by_id]
        found = 0
        for passage in gold:
            text = passage_text(passage)
            window = label_window(tokenize_windows(tokenizer, question.text, text, max_length, stride), answer_spans(text, answers))
            if window is not None:
                examples.append(window)
                found += 1
        counts["gold"] += found
        counts["skipped"] += not found
        gold_ids = set(question.gold_doc_ids)
        more, negs = 0, 0
        for index in ranked:
            passage = corpus[index]
            if passage.doc_id in gold_ids or (more >= distant and negs >= negatives):
                continue
            text = passage_text(passage)
            if has_answer(text, answers):
                if more < distant and (spans := answer_spans(text, answers)):
                    window = label_window(tokenize_windows(tokenizer, question.text, text, max_length, stride), spans)
                    if window is not None:
                        examples.append(window)
                        more += 1
            elif negs < negatives:
                examples.append(tokenize_windows(tokenizer, question.text, text, max_length, stride)[0])
                negs += 1
        counts["distant"] += more
        counts["negative"] += negs
    return examples, counts

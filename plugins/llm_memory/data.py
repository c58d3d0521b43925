"""Training examples: train-split questions and indexing pseudo-queries per passage, with BM25 hard negatives."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Sequence

import torch

from rag_bench.api import Passage, Question, bm25_neighbours

from .metrics import words as lower_words

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
SPAN_WORDS = (6, 14)
#: Words of a passage's opening (about max_evidence_tokens WordPiece tokens) that spans avoid under target=opening.
OPENING_WORDS = 30
#: WordPiece tokens per whitespace word of English Wikipedia text, about: an evidence window of max_evidence_tokens
#: tokens keeps this many times fewer words, so the answer it is centred on is not cut off by the token limit.
TOKENS_PER_WORD = 1.4


@dataclass(frozen=True)
class Example:
    """One training example: a query-shaped input, the passage it routes to, and the evidence to generate."""

    query: str
    doc: int
    evidence: str
    kind: str


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def query_text(query: str) -> str:
    """How every query (question or pseudo-query) is shown to the LM."""
    return f"question: {query.strip()}\nevidence:"


def window_words(max_tokens: int) -> int:
    """Whitespace words in an evidence window of `max_tokens` tokens (the last one is the end-of-evidence token)."""
    return max(4, int((max_tokens - 1) / TOKENS_PER_WORD))


def find_words(words: Sequence[str], needles: Sequence[str]) -> int | None:
    """Index of the first whitespace word of `words` where one of `needles` (as lower-cased \\w+ words) starts."""
    normed = [lower_words(w) for w in words]
    flat = [(i, t) for i, ws in enumerate(normed) for t in ws]
    tokens = [t for _, t in flat]
    for needle in needles:
        target = lower_words(needle)
        if not target:
            continue
        for j in range(len(tokens) - len(target) + 1):
            if tokens[j : j + len(target)] == target:
                return flat[j][0]
    return None


def window(text: str, around: Sequence[str], max_words: int) -> str:
    """`text` itself when it has at most `max_words` words, else the `max_words` consecutive words centred on the
    first occurrence of one of `around` (answers, or a query span), or its first words when none occurs."""
    words = text.split()
    if len(words) <= max_words:
        return text.strip()
    at = find_words(words, around)
    centre = 0 if at is None else at
    begin = max(0, min(centre - max_words // 2, len(words) - max_words))
    return " ".join(words[begin : begin + max_words])


def most_shared(query: str, candidates: Sequence[str]) -> str:
    """The candidate sharing the most distinct lower-cased \\w+ words with `query` (the earliest among equals)."""
    wanted = set(lower_words(query))
    return max(candidates, key=lambda text: len(wanted & set(lower_words(text))))


def question_evidence(question: Question, passage: Passage, max_words: int) -> str:
    """What a train question asks of one of its gold passages (the design's objective): the question's gold evidence
    sentences that are in this passage; else the passage's sentences that hold a gold answer; else its sentence
    sharing the most words with the question (a bridge passage of a multi-hop question) — as a window of at most
    `max_words` words centred on the answer."""
    from rag_bench.api import has_answer, split_sentences

    text = passage.text.strip()
    own = [s for s in question.gold_evidence if s.strip() and s.strip() != text and s.strip() in text]
    if not own:
        own = [s for s in split_sentences(text) if has_answer(s, question.answers)]
    if not own:
        own = [most_shared(question.text, split_sentences(text) or [text])]
    return window(" ".join(own), question.answers, max_words)


def pseudo_queries(passage: Passage, n: int, rng: random.Random, target: str = "evidence",
                   max_words: int = 23) -> list[tuple[str, str, str]]:
    """Up to `n` (query, evidence, kind) indexing examples of one passage.

    ``target=evidence`` (the design's objective): the title maps to the passage's first
    sentence, and a span of words drawn from one sentence maps to the window of
    that sentence around it: a passage has as many targets as sentences, and the
    query picks which. ``target=opening`` (a named ablation): the title, then word spans
    drawn from past the passage's opening, each mapped to the opening, whatever
    the query. ``target=sentence`` (the earlier objective): title and leading
    sentence map to the opening, a span to the passage from its sentence onwards.
    """
    sents = sentences(passage.text) or [passage.text]
    lead = passage.text
    out: list[tuple[str, str, str]] = []
    if passage.title:
        out.append((passage.title, window(sents[0], (), max_words) if target == "evidence" else lead, "title"))
    if target == "sentence":
        out.append((" ".join(sents[0].split()[: SPAN_WORDS[1] + 6]), lead, "lead"))
    words = passage.text.split()
    while len(out) < n:
        if target == "opening":
            begin_at = OPENING_WORDS if len(words) >= OPENING_WORDS + SPAN_WORDS[0] else 0
            size = min(len(words) - begin_at, rng.randint(*SPAN_WORDS))
            begin = rng.randint(begin_at, len(words) - size)
            out.append((" ".join(words[begin : begin + size]), lead, "span"))
            continue
        i = rng.randrange(len(sents))
        sent_words = sents[i].split()
        size = min(len(sent_words), rng.randint(*SPAN_WORDS))
        begin = rng.randint(0, len(sent_words) - size)
        span = " ".join(sent_words[begin : begin + size])
        evidence = window(sents[i], (span,), max_words) if target == "evidence" else " ".join(sents[i:])
        out.append((span, evidence, "span"))
    return out[:n]


def gold_evidence(question: Question, passage: Passage, target: str = "evidence", max_words: int = 23) -> str:
    """A train question's target in one of its gold passages: its answer-bearing evidence (`question_evidence`), the
    passage's opening (``opening``), or its gold evidence sentences (``sentence``)."""
    if target == "evidence":
        return question_evidence(question, passage, max_words)
    if target == "opening":
        return passage.text
    return " ".join(question.gold_evidence) if question.gold_evidence else passage.text


def build_examples(passages: Sequence[Passage], questions: Sequence[Question], params, seed: int) -> list[Example]:
    """Indexing examples for every passage mixed with the train questions whose gold passages are in `passages`:
    one example per (question, gold passage) under ``evidence`` (every hop of a multi-hop question is trained), the
    first gold passage only under the earlier targets."""
    rng = random.Random(seed)
    position = {p.doc_id: i for i, p in enumerate(passages)}
    target = params.evidence_target
    words = window_words(params.max_evidence_tokens)
    examples = [Example(q, i, ev, kind) for i, p in enumerate(passages)
                for q, ev, kind in pseudo_queries(p, params.pseudo_queries, rng, target, words)]
    for question in questions:
        golds = [position[d] for d in question.gold_doc_ids if d in position]
        for gold in golds if target == "evidence" else golds[:1]:
            evidence = gold_evidence(question, passages[gold], target, words)
            examples += [Example(question.text, gold, evidence, "question")] * params.question_repeat
    return examples


def hard_negatives(passages: Sequence[Passage], examples: Sequence[Example], count: int) -> list[list[int]]:
    """The top BM25 passages of each example's query other than its own (bm25s, the bm25 provider's tokenisation:
    `rag_bench.api.bm25_neighbours`)."""
    if count == 0 or len(passages) < 2:
        return [[] for _ in examples]
    ranked = bm25_neighbours(passages, [e.query for e in examples], count + 1)
    return [[d for d in row if d != ex.doc][:count] for row, ex in zip(ranked, examples)]


@dataclass
class Encoded:
    """Token ids of one example, ready for batching."""

    query: list[int]
    evidence: list[int]
    doc: int
    negatives: list[int]


def encode_queries(tokenizer, queries: Sequence[str], max_tokens: int) -> list[list[int]]:
    prefix = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = tokenizer([query_text(q) for q in queries], add_special_tokens=False, truncation=True, max_length=max_tokens - len(prefix))["input_ids"]
    return [prefix + row for row in ids]


def encode_evidence(tokenizer, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    ids = tokenizer([" " + t for t in texts], add_special_tokens=False, truncation=True, max_length=max_tokens - 1)["input_ids"]
    return [row + [tokenizer.eos_token_id] for row in ids]


def encode_examples(tokenizer, examples: Sequence[Example], negatives: Sequence[list[int]], params) -> list[Encoded]:
    queries = encode_queries(tokenizer, [e.query for e in examples], params.max_query_tokens)
    evidence = encode_evidence(tokenizer, [e.evidence for e in examples], params.max_evidence_tokens)
    return [Encoded(q, ev, e.doc, neg) for q, ev, e, neg in zip(queries, evidence, examples, negatives)]


def pad_left(rows: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def pad_right(rows: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


class Collator:
    """Batches Encoded examples: left-padded queries, right-padded evidence, positives and hard negatives."""

    def __init__(self, pad_id: int, hard_negatives: int):
        self.pad_id = pad_id
        self.hard = hard_negatives

    def pad(self, queries: Sequence[list[int]], evidence: Sequence[list[int]]) -> tuple[torch.Tensor, ...]:
        return (*pad_left(queries, self.pad_id), *pad_right(evidence, self.pad_id))

    def __call__(self, items: Sequence[Encoded]) -> dict[str, torch.Tensor]:
        q_ids, q_mask, e_ids, e_mask = self.pad([i.query for i in items], [i.evidence for i in items])
        negatives = torch.full((len(items), max(self.hard, 1)), -1, dtype=torch.long)
        for row, item in enumerate(items):
            if item.negatives:
                negatives[row, : len(item.negatives[: self.hard])] = torch.tensor(item.negatives[: self.hard])
        return {"q_ids": q_ids, "q_mask": q_mask, "e_ids": e_ids, "e_mask": e_mask,
                "doc": torch.tensor([i.doc for i in items]), "negatives": negatives}


def schedule(num_examples: int, params, steps: int) -> list[int]:
    """Example order for the whole run (seeded shuffles, epoch after epoch), so a resumed run sees the same batches."""
    per_step = params.batch_size * params.grad_accum
    needed = steps * per_step
    rng = random.Random(params.seed)
    order: list[int] = []
    while len(order) < needed:
        epoch = list(range(num_examples))
        rng.shuffle(epoch)
        order += epoch
    return order[:needed]


def total_steps(num_examples: int, params) -> int:
    if params.max_train_steps:
        return params.max_train_steps
    return max(1, params.epochs * num_examples // (params.batch_size * params.grad_accum))

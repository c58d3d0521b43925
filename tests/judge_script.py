"""A scripted judge for the loopback chat server: answers RAGAS's and RAGChecker's prompts, and the reader's.

It decides every verdict by one rule: a claim or statement is supported by
a text when its answer string occurs in that text (ignoring case), so the
expected metric values follow from the same rule.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Sequence

from .chat_server import prompt_text

_TRIPLET = re.compile(r'^\("(.*)", "(.*)", "(.*)"\)$')


def in_text(needle: str, text: str) -> bool:
    """Whether `needle` occurs in `text`, ignoring case (the scripted judge's rule)."""
    return needle.lower() in text.lower()


def _between(text: str, start: str, end: str) -> str:
    return text.rsplit(start, 1)[1].split(end, 1)[0].strip()


class ScriptedJudge:
    """Answers RAGAS (instructor JSON mode) and RAGChecker (refchecker prompts) requests, and the reader's."""

    def __init__(self, reader_answers: dict[str, str]):
        self.reader_answers = reader_answers  # question text -> reader answer
        self.question_of = {answer: question for question, answer in reader_answers.items()}

    @staticmethod
    def is_judge(text: str) -> bool:
        """Whether a prompt is a judge's (RAGChecker's or RAGAS's), not the reader's."""
        return "### Candidate Answer:" in text or "### Claims:" in text or bool(re.search(r'"title": "\w+Output"', text))

    def __call__(self, body: dict) -> str:
        text = prompt_text(body)
        if "### Candidate Answer:" in text:  # RAGChecker claim extraction
            return f'("answer", "is", "{_between(text, "### Candidate Answer:", "### KG:")}")'
        if "### Claims:" in text:  # RAGChecker joint checking, one label per claim
            reference = _between(text, "### Reference:", "### Claims:")
            claims = [_TRIPLET.match(line.strip()) for line in _between(text, "### Claims:", "\n\n\n").splitlines()]
            return "\n".join("Entailment" if in_text(c.group(3), reference) else "Neutral" for c in claims if c)
        titles = re.findall(r'"title": "(\w+Output)"', text)
        if not titles:  # the reader
            question = _between(text, "Question:", "\nAnswer:")
            return self.reader_answers[question]
        data = json.loads(_between(text, "input: ", "\nOutput:"))
        return json.dumps(self.ragas(titles[-1], data))

    def ragas(self, title: str, data: dict) -> dict:
        if title == "StatementGeneratorOutput":
            return {"statements": [data["answer"]]}
        if title == "NLIStatementOutput":
            return {"statements": [{"statement": s, "reason": "scripted", "verdict": int(in_text(s, data["context"]))}
                                   for s in data["statements"]]}
        if title == "AnswerRelevanceOutput":
            return {"question": self.question_of[data["response"]], "noncommittal": 0}
        if title == "ContextPrecisionOutput":
            return {"reason": "scripted", "verdict": int(in_text(data["answer"], data["context"]))}
        if title == "ContextRecallOutput":
            return {"classifications": [{"statement": data["answer"], "reason": "scripted",
                                         "attributed": int(in_text(data["answer"], data["context"]))}]}
        raise AssertionError(f"unscripted judge prompt {title}")


def scripted_answers(questions: Sequence[Any]) -> dict[str, str]:
    """Reader answers: right, wrong, right, wrong, ... so judges see supported and unsupported answers."""
    return {q.text: (q.answers[0] if i % 2 == 0 else f"not {i}") for i, q in enumerate(questions)}


def with_plain_text(judge: ScriptedJudge, when: Callable[[str], bool], reply: str = "I think this looks right.") -> Callable[[dict], str]:
    """`judge`, except that judge prompts for which `when(prompt)` holds get a plain-text `reply` (no JSON, no labels)."""

    def respond(body: dict) -> str:
        text = prompt_text(body)
        return reply if judge.is_judge(text) and when(text) else judge(body)

    return respond


def _average_precision(verdicts: Sequence[int]) -> float:
    hits, total = 0, 0.0
    for i, verdict in enumerate(verdicts, start=1):
        hits += verdict
        total += verdict * hits / i
    return total / hits if hits else 0.0


def expected_ragas(answer: str, evidence: Sequence[str], gold: str) -> dict[str, float]:
    """The RAGAS values the scripted judge's rule gives one question."""
    joined = "\n".join(evidence)
    return {"ragas_faithfulness": float(in_text(answer, joined)), "ragas_answer_relevancy": 1.0,
            "ragas_context_recall": float(in_text(gold, joined)),
            "ragas_context_precision": _average_precision([int(in_text(gold, e)) for e in evidence])}


def expected_ragchecker(answer: str, evidence: Sequence[str], gold: str) -> dict[str, float]:
    """The RAGChecker values the scripted judge's rule gives one question (those it determines simply)."""
    precision, recall = float(in_text(answer, gold)), float(in_text(gold, answer))
    faithful = any(in_text(answer, e) for e in evidence)
    return {"ragchecker_precision": precision, "ragchecker_recall": recall,
            "ragchecker_f1": 1.0 if precision and recall else 0.0,
            "ragchecker_claim_recall": float(any(in_text(gold, e) for e in evidence)),
            "ragchecker_context_precision": sum(in_text(gold, e) for e in evidence) / len(evidence),
            "ragchecker_faithfulness": float(faithful), "ragchecker_hallucination": float(not faithful and not precision)}


def records_of(result: Any) -> dict[str, dict]:
    """A run's records by question id."""
    return {r["qid"]: r for r in map(json.loads, (result.path / "records.jsonl").read_text().splitlines())}

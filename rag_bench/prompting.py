"""The one reader prompt every reader uses, and the post-processing of its answers.

The template (``rag_bench/prompts/reader.txt`` unless a reader's
``prompt_file`` setting names another file) holds two placeholders:
``{evidence}``, replaced by the evidence texts numbered ``[1] ...``, ``[2] ...``
one per line (``(no evidence)`` when a provider gives none), and
``{question}``. They are substituted literally, so braces elsewhere in the
template or in the evidence need no escaping. The prompt is sent as one user
message.

Answer post-processing (`clean_answer`), applied to every reader's raw output
before scoring:

1. keep the first non-empty line;
2. drop a leading ``Answer:`` label (any case);
3. strip surrounding whitespace, quotes and backticks and a trailing period, until none is left.

EM/F1 then apply SQuAD normalisation on top (lower case, no punctuation or
articles), so this only removes what the normalisation would not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

from .errors import RagBenchError
from .jsonl import sha256_text

PLACEHOLDERS = ("{evidence}", "{question}")
NO_EVIDENCE = "(no evidence)"
_LABEL = re.compile(r"^\s*answer\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’"


@dataclass(frozen=True)
class PromptTemplate:
    """A reader prompt template: its text and where it came from."""

    text: str
    source: str

    @property
    def sha256(self) -> str:
        return sha256_text(self.text)

    def render(self, question: str, evidence: Sequence[str]) -> str:
        """The prompt for one question: numbered evidence, then the question."""
        block = "\n".join(f"[{i}] {' '.join(text.split())}" for i, text in enumerate(evidence, start=1))
        return self.text.replace("{evidence}", block or NO_EVIDENCE).replace("{question}", question.strip())

    def messages(self, question: str, evidence: Sequence[str]) -> list[dict[str, str]]:
        """The chat messages for one question (a single user turn)."""
        return [{"role": "user", "content": self.render(question, evidence)}]

    def manifest(self) -> dict[str, str]:
        """What a reader's settings record about its prompt."""
        return {"prompt_source": self.source, "prompt_sha256": self.sha256, "prompt_template": self.text}


def load_template(prompt_file: str | None = None) -> PromptTemplate:
    """The packaged template, or the one in `prompt_file` (checked for both placeholders)."""
    if prompt_file:
        path = Path(prompt_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RagBenchError(f"prompt file {path}: cannot read it ({exc.strerror}); pass an existing file as -R prompt_file=PATH") from None
        source = str(path.resolve())
    else:
        text = resources.files("rag_bench.prompts").joinpath("reader.txt").read_text(encoding="utf-8")
        source = "rag_bench/prompts/reader.txt"
    missing = [p for p in PLACEHOLDERS if p not in text]
    if missing:
        raise RagBenchError(f"prompt file {source} lacks {' and '.join(missing)}; a reader prompt needs both {{evidence}} and {{question}}")
    return PromptTemplate(text=text, source=source)


def clean_answer(raw: str | None) -> str:
    """Post-process a reader's raw output into the short answer that is scored (see module doc)."""
    lines = [line for line in (raw or "").splitlines() if line.strip()]
    if not lines:
        return ""
    answer, previous = _LABEL.sub("", lines[0]), None
    while answer != previous:  # e.g. `"Paris".` needs the period, then the quotes removed
        previous = answer
        answer = answer.strip().strip(_QUOTES)
        if answer.endswith(".") and not answer.endswith(".."):
            answer = answer[:-1]
    return answer

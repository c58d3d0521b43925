"""nq_open_dpr: NQ-open test (3,610 questions) over the external 21M-passage DPR Wikipedia.

The builder reads only the questions; the corpus lives in the prebuilt indexes
the card names under ``external_corpus`` (fetched by the providers that search
them, see `rag_bench.external`). Questions carry no gold passage ids: gold is
DPR's answer-string match, scored as ``answer_recall@k``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from rag_bench.api import Passage, Question, RagBenchError, TaskCard, read_jsonl

#: The cards this module builds (`<name>.yaml` beside it).
CARDS = ("nq_open_dpr",)


def read_questions(path: Path, id_prefix: str, split: str) -> list[Question]:
    """NQ-open rows (``question``, ``answer``) in file order, ids ``<prefix>-0000`` by row, all in `split`."""
    questions = []
    for row_number, row in enumerate(read_jsonl(path, required=("question", "answer"))):
        answers = row["answer"]
        if not isinstance(answers, list) or not answers:
            raise RagBenchError(f"{path}: row {row_number + 1} has no answer list")
        questions.append(
            Question(qid=f"{id_prefix}-{row_number:04d}", text=str(row["question"]), answers=tuple(map(str, answers)),
                     split=split, gold_doc_ids=(), gold_evidence=(), meta={"row": row_number})
        )
    return questions


def build(card: TaskCard, sources: Mapping[str, Path]) -> tuple[list[Passage], list[Question]]:
    """No corpus (it is external) and NQ-open.dev's questions, all in the card's one split."""
    if card.external_corpus is None:
        raise RagBenchError(f"task card {card.name}: nq_open_dpr's builder needs an `external_corpus` section")
    prefix = str(card.params().get("id_prefix", "nqopen"))
    return [], read_questions(sources["nq_open_dev"], prefix, card.default_split)

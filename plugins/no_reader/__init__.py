"""The `none` reader: no answers, so a run reports evidence-only metrics."""

from typing import Sequence

from rag_bench.api import Question, Reader, ReaderAnswer, hookimpl


class NoReader(Reader):
    """Produces no answer; answer metrics (em, f1, judges) are skipped."""

    description = "no reader: evidence-only metrics"
    answers = False

    def read(self, questions: Sequence[Question], evidence: Sequence[Sequence[str]]) -> list[ReaderAnswer]:
        return [ReaderAnswer(answer=None) for _ in questions]


@hookimpl
def register_readers(register):
    register("none", NoReader)

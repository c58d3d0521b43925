"""The interface of readers: question + evidence texts -> answer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import Any, ClassVar, Sequence

from .params import Configurable, json_ready
from .types import Question, ReaderAnswer


#: Reader settings that `Reader.fingerprint` records as decoding settings, where a reader has them.
DECODING_SETTINGS = ("temperature", "top_p", "max_tokens", "max_new_tokens", "seed")


class Reader(Configurable, ABC):
    """Turns a question and its evidence into a short answer.

    Every provider in a comparison is read by the same reader, so answer
    metrics differ only by the evidence. Declare settings in `Params`
    (`Configurable` holds them); `settings()` goes into the manifest and must
    never include secrets.
    """

    description: ClassVar[str] = ""
    #: False for readers that produce no answers (answer metrics are skipped).
    answers: ClassVar[bool] = True
    # `runtime_settings` (Configurable): settings that change speed or robustness, not answers (e.g.
    # concurrency): recorded in the manifest but left out of the run's configuration hash, so a resume may
    # change them.
    #: True when `submit` returns before the answers are in (calls queued behind the batches already
    #: submitted): the runner then hands over the next batch before this one is back, so a remote
    #: endpoint is never idle between batches. False: `submit` reads in the caller's thread.
    queues_reads: ClassVar[bool] = False

    def answer_settings(self) -> dict[str, Any]:
        """The settings answers depend on: `settings` less `runtime_settings` (they go into the run's id)."""
        return self.fixed_settings()

    def limit_consecutive_failures(self, limit: int | None) -> None:
        """After `limit` failed calls in a row, answer the rest as failed without calling (a dead endpoint).

        The runner sets it from `--max-consecutive-failures` before the question
        loop and stops the run when that many questions in a row have failed;
        a reader with remote calls uses it so that queued calls do not each wait
        through their timeouts and retries. The default ignores it.
        """

    def preflight(self) -> None:
        """Fail fast, before the question loop, on a bad key, endpoint or model."""

    def prepare(self, task: Any) -> None:
        """Build or load what this reader needs for the run's task (e.g. train on its train split), after
        `preflight` and before the question loop. A reader must never train on the split it is scored on.
        The default needs nothing."""

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the answers this reader gives, for the manifest and the leaderboard's grouping:
        `model` (id or endpoint model name), `endpoint` (a remote reader's URL), `weights_sha256` (None where the
        weights are not at hand),
        `prompt_sha256` and the `decoding` settings; called after `prepare`. Rows whose readers'
        fingerprints differ are never ranked in one column. The default reads them off `answer_settings()`."""
        settings = self.answer_settings()
        return {"model": settings.get("model"), "endpoint": settings.get("base_url"), "weights_sha256": None, "prompt_sha256": settings.get("prompt_sha256"),
                "decoding": {k: settings[k] for k in DECODING_SETTINGS if k in settings}}

    @abstractmethod
    def read(self, questions: Sequence[Question], evidence: Sequence[Sequence[str]]) -> list[ReaderAnswer]:
        """Answer each question from its evidence texts; one `ReaderAnswer` per question, in order."""

    def submit(self, questions: Sequence[Question], evidence: Sequence[Sequence[str]]) -> "Future[list[ReaderAnswer]]":
        """`read` as a future. The default reads now and returns a finished future; a reader with remote calls
        (`queues_reads`) queues the batch's calls behind those already submitted, under one concurrency bound,
        and cancelling the future drops its calls that have not been sent."""
        future: Future[list[ReaderAnswer]] = Future()
        try:
            future.set_result(self.read(questions, evidence))
        except Exception as exc:  # raised where the caller takes the result, as `read` would
            future.set_exception(exc)
        return future

    def close(self) -> None:
        """Release connections or models."""


def checked_answers(reader: Reader, questions: Sequence[Question], answers: Sequence[ReaderAnswer]) -> list[ReaderAnswer]:
    """`answers` of a `read` or `submit`, checked to hold one answer per question (a reader that returns fewer
    would otherwise lose questions when they are paired up); a RuntimeError naming the reader if not."""
    if len(answers) != len(questions):
        raise RuntimeError(f"reader {type(reader).__name__} returned {len(answers)} answers for {len(questions)} questions")
    return list(answers)


def weights_sha256(module: Any) -> str:
    """sha256 over a torch module's parameters and buffers (names, shapes, dtypes, bytes), in name order: the
    `weights_sha256` of a reader whose weights are at hand (torch is imported here, not by this module)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}\n".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def reader_fingerprint(name: str, reader: Reader) -> dict[str, Any]:
    """`reader.fingerprint()` headed by the reader's kind (its registered name), as the manifest records it."""
    return json_ready({"kind": name, **reader.fingerprint()})

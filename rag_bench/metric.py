"""The interface of metrics and the numbers they produce."""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from .types import Question

if TYPE_CHECKING:
    from .task import Task


@dataclass(frozen=True)
class RunSetup:
    """What is known of a run before its question loop: what a judge's `Metric.preflight` checks."""

    task: "Task"
    split: str
    ks: tuple[int, ...]
    provider: str
    reader: str
    reader_answers: bool
    #: The reader's manifest settings (judges reuse its endpoint) and the `-J` judge settings.
    reader_settings: dict[str, Any] = field(default_factory=dict)
    judge_settings: dict[str, str] = field(default_factory=dict)
    #: Failed calls in a row after which a judge stops calling its endpoint (None: never).
    max_consecutive_failures: int | None = None


@dataclass(frozen=True)
class RunContext(RunSetup):
    """What a metric may know about the run it scores: its setup and, measured once the questions are answered,
    `efficiency`: ``prepare_s``, ``footprint_bytes`` (by part), ``peak_rss_bytes``, ``num_passages`` and the
    manifest's ``first_session``. Built complete, after the question loop, before any metric or judge scores."""

    efficiency: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def after_loop(cls, setup: RunSetup, efficiency: dict[str, Any]) -> "RunContext":
        """The scoring context of a run whose question loop has ended."""
        return cls(**{f.name: getattr(setup, f.name) for f in fields(RunSetup)}, efficiency=efficiency)


@dataclass
class Aggregate:
    """One aggregate figure: `value`, its 95% interval (None where one measurement has none) and `n`.

    `unscored` (judge metrics only) counts the questions a judge was asked
    for this metric but could not score; `n` counts those it scored.
    """

    value: float
    ci95: tuple[float, float] | None
    n: int
    unscored: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"value": self.value, "ci95": list(self.ci95) if self.ci95 else None, "n": self.n}
        if self.unscored is not None:
            out["unscored"] = self.unscored
        return out


class Metric(ABC):
    """Scores a finished run.

    Override `score_one` (or `score`, to batch, e.g. for LLM judges) to
    return per-question values; the harness averages each name over the
    questions that have it, with a bootstrap 95% interval. Override
    `run_level` for figures that are not means (percentiles, storage).
    Return nothing for questions or runs the metric does not apply to.
    """

    description: ClassVar[str] = ""
    #: Opt-in metrics (costly judges) run only when named with --judges.
    opt_in: ClassVar[bool] = False

    def preflight(self, setup: RunSetup) -> None:
        """Fail fast, before the question loop, on what would break scoring later
        (a judge's endpoint, key or model). Scoring gets the complete `RunContext` later."""

    def score(self, records: Sequence[dict[str, Any]], questions: Sequence[Question], ctx: RunContext) -> list[dict[str, float]]:
        return [self.score_one(record, question, ctx) for record, question in zip(records, questions)]

    def score_one(self, record: dict[str, Any], question: Question, ctx: RunContext) -> dict[str, float]:
        return {}

    def run_level(self, records: Sequence[dict[str, Any]], ctx: RunContext) -> dict[str, Aggregate]:
        return {}

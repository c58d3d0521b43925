"""The interface every evidence provider implements, built-in or third-party."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from .params import NoParams, params_to_dict
from .types import ProvidedEvidence, Question

if TYPE_CHECKING:
    from .task import Task


class EvidenceProvider(ABC):
    """A way of giving a reader evidence for a question: the thing rag-bench scores.

    Subclass it, declare settings as a frozen dataclass in `Params` (the user
    sets them with ``-P key=value``), and register the class from a plugin's
    ``register_providers`` hook. The harness calls, in order:

    1. ``prepare(task, workdir)``: build or load state (an index, a trained
       memory). `workdir` is a cache folder owned by this provider, keyed by
       (provider, version, settings, task version, corpus hash): state found
       there from an earlier run may be reused as is.
    2. ``provide(questions, k)`` once per batch, returning one
       `ProvidedEvidence` per question, in order.
    3. ``footprint()`` for the storage the provider needs at query time.

    Bump `version` when a change makes cached state in `workdir` invalid.
    """

    Params: ClassVar[type] = NoParams
    version: ClassVar[str] = "1"
    #: One line for `rag-bench plugins`.
    description: ClassVar[str] = ""
    #: False for closed-book providers, which can run on a task whose corpus is empty
    #: (a task card with optional corpus sources that are missing, e.g. mirage's doc pool).
    needs_corpus: ClassVar[bool] = True

    def __init__(self, params: Any = None):
        self.params = params if params is not None else self.Params()

    def settings(self) -> dict[str, Any]:
        """The resolved settings, JSON-ready; they go into the manifest and the cache key."""
        return params_to_dict(self.params)

    @abstractmethod
    def prepare(self, task: "Task", workdir: Path) -> None:
        """Build or load everything `provide` needs for `task`."""

    @abstractmethod
    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        """Return evidence for each question: at most `k` ranked hits and the texts for the reader."""

    def footprint(self) -> dict[str, int]:
        """Bytes of storage the provider needs at query time, by part (e.g. index, text store).

        Parts whose names start with ``extra_`` are reported but not counted in
        the headline figure (e.g. LoRA weights beside a memory table).
        """
        return {}

    def close(self) -> None:
        """Release resources (models, JVMs). Called once after the run."""

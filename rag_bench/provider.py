"""The interface every evidence provider implements, built-in or third-party."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from .errors import RagBenchError
from .params import Configurable, json_ready
from .types import Passage, ProvidedEvidence, Question

if TYPE_CHECKING:
    from .task import Task


@dataclass
class WriteCost:
    """What `EvidenceProvider.write` reports about one write of new passages.

    Every field is optional: the harness (``rag-bench write-curve``) always
    measures the call's wall-clock seconds and the growth of the counted
    `footprint()` itself (the headline figures, comparable across providers),
    and keeps what the provider says beside them. `seconds` is the provider's
    own measure of the work, `bytes_added` the bytes it counts as written
    (e.g. an index's growth, without the text store), `steps` the
    optimisation steps run per passage (None for a provider that does not
    optimise, e.g. an index insert), `info` anything else JSON-ready (losses
    before and after).
    """

    seconds: float | None = None
    bytes_added: int | None = None
    steps: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


class EvidenceProvider(Configurable, ABC):
    """A way of giving a reader evidence for a question: the thing rag-bench scores.

    Subclass it, declare settings as a frozen dataclass in `Params` (the user
    sets them with ``-P key=value``; `Configurable` holds them), and register
    the class from a plugin's ``register_providers`` hook. The harness calls,
    in order:

    1. ``prepare(task, workdir)``: build or load state (an index, a trained
       memory). `workdir` is a cache folder owned by this provider, keyed by
       (provider, version, settings, task version, corpus hash): state found
       there from an earlier run may be reused as is. It is called on every
       run (also when the state is already there).
    2. ``metadata()`` once, for the run's manifest (what the provider was
       trained on, its base model).
    3. ``provide(questions, k)`` (or ``provide(questions, k, evidence_k=N)``,
       see `provide`) once per batch, returning one `ProvidedEvidence` per
       question, in order. The runner calls it on one worker thread (the same
       thread for the whole run, never two calls at once), a batch ahead of
       the reader, so the next batch is provided while this one is read;
       ``rag-bench run --no-overlap`` calls it on the main thread instead.
    4. ``footprint()`` for the storage the provider needs at query time.

    Optional capability: ``write(passages, steps=None)`` adds new passages to
    the prepared state (``rag-bench write-curve``, docs/PLUGINS.md); a
    provider that does not override it is reported as "cannot write".

    Bump `version` when a change makes cached state in `workdir` invalid.
    """

    version: ClassVar[str] = "1"
    #: One line for `rag-bench plugins`.
    description: ClassVar[str] = ""
    #: False for closed-book providers, which can run on a task whose corpus is empty
    #: (a task card with optional corpus sources that are missing, e.g. mirage's doc pool).
    needs_corpus: ClassVar[bool] = True
    #: True when `prepare` handles a task whose corpus is external (``task.external``: prebuilt indexes that hold the
    #: passages, ``task.corpus`` empty): it searches those artefacts, or refuses with its own message. Others are
    #: refused by the harness before `prepare`.
    handles_external_corpus: ClassVar[bool] = False
    # `runtime_settings` (Configurable): settings that change only `provide` (threads, decoding limits, which
    # questions get controls), not what `prepare` builds: they stay in the manifest and the run's id but out of
    # the workdir's cache key, so changing one reuses the prepared state.
    #: True when `write` optimises each new passage for a number of steps (a learned memory: llm_memory's z_new):
    #: ``rag-bench write-curve`` then scores one point per step count of ``--steps``. False: `steps` is ignored and
    #: the write curve has one point (an index insert).
    write_takes_steps: ClassVar[bool] = False

    def state_settings(self) -> dict[str, Any]:
        """The settings the prepared state depends on: `settings` less `runtime_settings` (the cache key)."""
        return self.fixed_settings()

    @abstractmethod
    def prepare(self, task: "Task", workdir: Path) -> None:
        """Build or load everything `provide` needs for `task`."""

    @abstractmethod
    def provide(self, questions: Sequence[Question], k: int) -> list[ProvidedEvidence]:
        """Return evidence for each question: at most `k` ranked hits and their evidence texts, in rank order.

        `k` is the ranking depth (the largest retrieval cut-off, ``-k``). The
        reader sees only the first `reader_k` texts (``--reader-k``, default
        5); retrieval metrics use all `k` hits and ``answer_recall@k`` the
        texts. A provider whose texts are costly (a generator) may declare a
        third parameter ``evidence_k: int | None = None`` (or ``**kwargs``):
        the harness then passes ``evidence_k=reader_k``, and texts are needed
        only for the top `evidence_k` hits (None: for all of them). Evidence
        metrics that need texts past the depth provided (``answer_recall@20``
        from 5 texts) are then left out, not counted as zero. A provider with
        the two-parameter signature keeps working unchanged: the harness
        truncates what the reader sees.
        """

    def metadata(self) -> dict[str, Any]:
        """What the provider was built from, as MTEB records model metadata; called after `prepare`.

        Known keys (the harness fills the defaults of any left out):
        ``trained_on_corpus`` (bool, default False: parameters were fitted to
        this task's passages or questions, e.g. a memory table or LoRA trained
        on them; an index built from the corpus is not training),
        ``trained_splits`` (list of split names whose questions were used in
        training, default []), ``parameters_trained`` (int, default 0),
        ``base_model`` and ``base_revision`` (str or None: the pretrained
        model id and its commit). Other JSON-ready keys are kept as given.
        """
        return {}

    def footprint(self) -> dict[str, int]:
        """Bytes of storage the provider needs at query time, by part (e.g. index, text store).

        ``text_store`` is, by convention, the passage text a provider must keep
        to hand evidence to the reader (a retriever returns stored passages; a
        generator that writes its evidence needs none). Parts whose names
        start with ``extra_`` are reported but not counted in the headline
        figure (e.g. LoRA weights beside a memory table).
        """
        return {}

    def write(self, passages: Sequence[Passage], steps: int | None = None) -> WriteCost:
        """Optional: add new `passages` to the prepared state, write-and-forget (``rag-bench write-curve``).

        Override it to make the provider writable; the base class's raises, and
        ``can_write`` tells the two apart (providers that do not override it are
        reported as "cannot write"). The harness calls it after ``prepare`` (and
        possibly after ``provide``), once or several times in a row (sequential
        batches), each time with passages whose doc ids are in neither the
        corpus nor an earlier write. Afterwards ``provide`` ranks the old and
        the written passages together, and ``footprint`` counts both.

        `steps` is the number of optimisation steps per new passage for a
        provider that sets ``write_takes_steps = True`` (None: its own
        default); others ignore it. The prepared state in `workdir` must stay
        as ``prepare`` left it (the harness prepares from it again for the
        next point of a curve): keep what is written in memory, or in a
        temporary folder removed by ``close``. Return a `WriteCost` (its fields
        may all be left empty); raise ``RagBenchError`` with what to do when
        this configuration cannot write (e.g. a prebuilt external index).
        """
        raise RagBenchError(f"provider {type(self).__name__} cannot write new passages (it does not implement write())")

    def close(self) -> None:
        """Release resources (models, JVMs). Called once after the run."""


#: What `metadata()` says when a provider leaves a key out.
METADATA_DEFAULTS: dict[str, Any] = {
    "trained_on_corpus": False,
    "trained_splits": [],
    "parameters_trained": 0,
    "base_model": None,
    "base_revision": None,
}
_METADATA_TYPES: dict[str, tuple[type, ...]] = {
    "trained_on_corpus": (bool,),
    "trained_splits": (list, tuple),
    "parameters_trained": (int,),
    "base_model": (str, type(None)),
    "base_revision": (str, type(None)),
}


def provider_metadata(name: str, provider: EvidenceProvider) -> dict[str, Any]:
    """`provider.metadata()` with the defaults filled in and the known keys' types checked."""
    given = provider.metadata() or {}
    if not isinstance(given, dict):
        raise RagBenchError(f"provider {name}: metadata() must return a dict, got {type(given).__name__}")
    out = {**METADATA_DEFAULTS, **given}
    for key, types in _METADATA_TYPES.items():
        value = out[key]
        if not isinstance(value, types) or (key == "parameters_trained" and isinstance(value, bool)):
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise RagBenchError(f"provider {name}: metadata()[{key!r}] must be {expected}, got {value!r}")
    out["trained_splits"] = [str(split) for split in out["trained_splits"]]
    return json_ready(out)


def can_write(provider: EvidenceProvider | type[EvidenceProvider]) -> bool:
    """Whether a provider (instance or class) implements the optional `write` hook: overrides the base class's."""
    cls = provider if isinstance(provider, type) else type(provider)
    return getattr(cls, "write", EvidenceProvider.write) is not EvidenceProvider.write


def accepts_evidence_k(provider: EvidenceProvider) -> bool:
    """Whether `provider.provide` takes an `evidence_k` keyword (by name, or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(provider.provide).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "evidence_k" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def provide_evidence(provider: EvidenceProvider, questions: Sequence[Question], k: int,
                     evidence_k: int | None, name: str = "") -> list[ProvidedEvidence]:
    """Call `provide` with `evidence_k` where the provider declares it, else with the old two arguments; one
    result per question or a RuntimeError naming the provider (`name`, else its class), never a silent shortfall."""
    if evidence_k is not None and accepts_evidence_k(provider):
        provided = provider.provide(questions, k, evidence_k=evidence_k)
    else:
        provided = provider.provide(questions, k)
    if len(provided) != len(questions):
        raise RuntimeError(f"provider {name or type(provider).__name__} returned {len(provided)} results for "
                           f"{len(questions)} questions")
    return provided

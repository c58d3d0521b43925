"""Task cards, task definitions and prepared tasks.

A task card is a YAML file (versioned like lm-evaluation-harness tasks) that
names its raw sources with checksums, describes how corpus and questions are
built, and gives splits, default k values and metrics. Its keys are declared
in `rag_bench.task_schema` (each with its type and meaning; docs/TASK_CARDS.md
shows the table), and `TaskCard.from_dict` validates every card against that
schema. A prepared task holds the data in a BEIR-like contract: corpus,
queries (with answers, split and gold evidence) and qrels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from .errors import RagBenchError
from .task_schema import DEFAULT_K, split_names, validate_card
from .types import Passage, Question


@dataclass(frozen=True)
class SourceSpec:
    """One raw input file of a task.

    `path` is where it lies under ``RAG_BENCH_DATA_DIR`` (or an absolute path);
    `url` the original at a pinned commit (empty: no download); `sha256` the checksum of the file as stored locally and
    `content_sha256` that of its decompressed content, which equals the
    original download when the local copy was gzip'd. `md5`, when set, is the
    publisher's own checksum (pyserini's prebuilt indexes publish only md5):
    a file must then match it too.
    """

    name: str
    path: str
    url: str
    #: None (``sha256: null`` in the card) for a source whose checksum is unknown: not verified.
    sha256: str | None
    content_sha256: str | None = None
    license: str | None = None
    optional: bool = False
    help: str | None = None
    md5: str | None = None


@dataclass(frozen=True)
class ExternalCorpus:
    """A corpus too large to load: it lives in prebuilt artefacts (indexes that store the passages) named by sources.

    Declared by a card's ``external_corpus`` section. `sources` are fetched by the
    providers that search them (on demand), never by ``rag-bench prepare``;
    `indexes` maps an index kind (``lucene``, ``dense``) to its settings, each
    with the ``source`` that holds it. The task's own `corpus` is then empty
    and its questions carry no gold passage ids.
    """

    passages: int
    indexes: Mapping[str, Mapping[str, Any]]
    description: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        """Names of the sources that hold the prebuilt artefacts."""
        return tuple(str(spec["source"]) for spec in self.indexes.values())

    def index(self, kind: str, user: str) -> Mapping[str, Any]:
        """The settings of index `kind`; a RagBenchError naming what the task offers when it has none."""
        if kind not in self.indexes:
            raise RagBenchError(f"{user}: this task's external corpus has no {kind} index; it offers: {', '.join(self.indexes)}")
        return self.indexes[kind]

    @classmethod
    def from_card(cls, data: Any, where: str, source_names: set[str]) -> "ExternalCorpus":
        if not isinstance(data, dict) or "passages" not in data or not isinstance(data.get("indexes"), dict):
            raise RagBenchError(f"task card {where}: `external_corpus` needs `passages` and a mapping `indexes`")
        for kind, spec in data["indexes"].items():
            if not isinstance(spec, dict) or spec.get("source") not in source_names:
                raise RagBenchError(f"task card {where}: external_corpus index {kind!r} must name one of the card's sources")
        return cls(int(data["passages"]), data["indexes"], str(data.get("description", "")).strip())


@dataclass(frozen=True)
class TaskCard:
    """A parsed task card; `raw` keeps the whole YAML for the manifest.

    `metrics` is informational: the standard metric families
    (`rag_bench.task_schema.METRIC_FAMILIES`) the task's gold data supports,
    validated so that a typo is an error. A run computes every always-on
    metric whatever it says; nothing reads it to choose metrics.
    """

    name: str
    version: int
    description: str
    construction: str
    sources: tuple[SourceSpec, ...]
    splits: tuple[str, ...]
    default_split: str
    k: tuple[int, ...]
    metrics: tuple[str, ...]
    raw: Mapping[str, Any] = field(compare=False, hash=False, repr=False)

    def params(self) -> Mapping[str, Any]:
        """Builder settings from the card's `build` section."""
        return self.raw.get("build", {}) or {}

    @cached_property
    def external_corpus(self) -> ExternalCorpus | None:
        """The card's external corpus (prebuilt indexes that hold the passages), None for an in-memory corpus."""
        data = self.raw.get("external_corpus")
        if data is None:
            return None
        return ExternalCorpus.from_card(data, self.name, {s.name for s in self.sources})

    def sources_to_prepare(self) -> tuple[SourceSpec, ...]:
        """The sources `rag-bench prepare` fetches: all but an external corpus's artefacts (providers fetch those)."""
        external = set(self.external_corpus.sources) if self.external_corpus else set()
        return tuple(s for s in self.sources if s.name not in external)

    @classmethod
    def from_yaml(cls, path: Path | str, text: str | None = None) -> "TaskCard":
        where = str(path)
        try:
            data = yaml.safe_load(text if text is not None else Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RagBenchError(f"task card {where}: invalid YAML: {exc}") from None
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "<card>") -> "TaskCard":
        """The card `data` (parsed YAML) once it validates against `rag_bench.task_schema`; `where` names it in errors."""
        if where == "<card>" and isinstance(data, dict) and isinstance(data.get("name"), str):
            where = data["name"]
        validate_card(data, where)
        sources = []
        for name, spec in data["sources"].items():
            sources.append(
                SourceSpec(
                    name=name,
                    path=spec["path"],
                    url=spec.get("url", ""),
                    sha256=spec["sha256"],
                    content_sha256=spec.get("content_sha256"),
                    license=spec.get("license"),
                    optional=bool(spec.get("optional", False)),
                    help=spec.get("help"),
                    md5=spec.get("md5"),
                )
            )
        names = split_names(data["splits"])
        k = tuple(int(x) for x in data.get("k", DEFAULT_K))
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            description=str(data.get("description", "")).strip(),
            construction=str(data.get("construction", "")).strip(),
            sources=tuple(sources),
            splits=names,
            default_split=str(data.get("default_split", "test" if "test" in names else names[0])),
            k=k,
            metrics=tuple(data.get("metrics", ())),
            raw=data,
        )


#: Builds a task from its card and verified source files: (corpus, questions).
Builder = Callable[[TaskCard, Mapping[str, Path]], "tuple[list[Passage], list[Question]]"]


@dataclass(frozen=True)
class TaskDefinition:
    """What a plugin registers for a task: its card and its builder."""

    card: TaskCard
    build: Builder

    def __post_init__(self) -> None:
        # However the card was made (from_dict validates; a dataclass built by hand does not), a registered task's
        # card meets the schema.
        validate_card(self.card.raw, self.card.name)


@dataclass
class Task:
    """A prepared task, loaded from its BEIR-like folder."""

    card: TaskCard
    path: Path
    corpus: list[Passage]
    questions: list[Question]
    files_sha256: dict[str, str]
    source_sha256: dict[str, str]

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> int:
        return self.card.version

    @cached_property
    def corpus_sha256(self) -> str:
        return self.files_sha256["corpus.jsonl"]

    @cached_property
    def passages_by_id(self) -> dict[str, Passage]:
        return {p.doc_id: p for p in self.corpus}

    @property
    def external(self) -> ExternalCorpus | None:
        """The external corpus this task is searched over (prebuilt indexes), None when `corpus` holds the passages."""
        return self.card.external_corpus

    @property
    def num_passages(self) -> int:
        """Passages searched: the external corpus's count, else the corpus's length."""
        return self.external.passages if self.external is not None else len(self.corpus)

    def require_corpus(self, user: str, external_ok: bool = False) -> None:
        """Raise, naming the missing optional sources and where to get them, when the corpus is empty.

        For a task with an external corpus, pass unless `external_ok` is False
        (the provider does not handle external corpora): then say which can.
        """
        if self.external is not None:
            if external_ok:
                return
            raise RagBenchError(
                f"{user} works on the passages in memory, but task {self.name}'s corpus is external: "
                f"{self.external.passages:,} passages served only from prebuilt indexes "
                f"({', '.join(self.external.indexes)}). Providers that search them set `handles_external_corpus` "
                "(built in: bm25 -P backend=pyserini, dense)."
            )
        if self.corpus:
            return
        corpus_sources = self.card.raw.get("optional_corpus") or [s.name for s in self.card.sources if s.optional]
        missing = [s for s in self.card.sources if s.name in corpus_sources and s.name not in self.source_sha256]
        detail = " ".join(f"Source {s.name!r} ({s.path}) is missing: {(s.help or s.url).strip()}" for s in missing)
        raise RagBenchError(
            f"{user} needs a corpus, but task {self.name} has none. {detail} "
            "Closed-book providers (--provider no_retrieval) run without one."
        )

    def split(self, name: str) -> list[Question]:
        if name not in self.card.splits:
            raise RagBenchError(
                f"task {self.name} has no split {name!r}; its splits: {', '.join(self.card.splits)}"
            )
        return [q for q in self.questions if q.split == name]

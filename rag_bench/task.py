"""Task cards, task definitions and prepared tasks.

A task card is a YAML file (versioned like lm-evaluation-harness tasks) that
names its raw sources with checksums, describes how corpus and questions are
built, and gives splits, default k values and metrics. A prepared task holds
the data in a BEIR-like contract: corpus, queries (with answers, split and
gold evidence) and qrels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from .errors import RagBenchError
from .types import Passage, Question


@dataclass(frozen=True)
class SourceSpec:
    """One raw input file of a task.

    `path` is where it lies under ``RAG_BENCH_DATA_DIR`` (or an absolute path);
    `url` the original at a pinned commit (empty: no download); `sha256` the checksum of the file as stored locally and
    `content_sha256` that of its decompressed content, which equals the
    original download when the local copy was gzip'd.
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


@dataclass(frozen=True)
class TaskCard:
    """A parsed task card; `raw` keeps the whole YAML for the manifest."""

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
        if not isinstance(data, dict):
            raise RagBenchError(f"task card {where}: expected a mapping at the top level")
        missing = [key for key in ("name", "version", "sources", "splits") if key not in data]
        if missing:
            raise RagBenchError(f"task card {where}: missing {', '.join(missing)}")
        sources = []
        for name, spec in (data["sources"] or {}).items():
            absent = [key for key in ("path", "sha256") if key not in (spec or {})]
            if absent:
                raise RagBenchError(f"task card {where}: source {name!r} lacks {', '.join(absent)}")
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
                )
            )
        splits = data["splits"]
        split_names = tuple(splits) if isinstance(splits, (dict, list)) else ()
        if not split_names:
            raise RagBenchError(f"task card {where}: `splits` names no split")
        k = tuple(int(x) for x in data.get("k", (1, 5, 20)))
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            description=str(data.get("description", "")).strip(),
            construction=str(data.get("construction", "")).strip(),
            sources=tuple(sources),
            splits=split_names,
            default_split=str(data.get("default_split", "test" if "test" in split_names else split_names[0])),
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

    def require_corpus(self, user: str) -> None:
        """Raise, naming the missing optional sources and where to get them, when the corpus is empty."""
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

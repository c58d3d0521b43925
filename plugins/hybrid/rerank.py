"""Cross-encoder reranking of fused candidates."""

from __future__ import annotations

from typing import Sequence

from rag_bench.api import RagBenchError, loaded_revision

DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L-6-v2"


def load_cross_encoder(name: str, device: str | None, max_length: int):
    """A sentence-transformers CrossEncoder; one RagBenchError naming it when it cannot be loaded."""
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(name, device=device, max_length=max_length)
    except Exception as exc:  # hub, file and config errors all mean: this model is not available
        raise RagBenchError(
            f"hybrid: cannot load the reranker {name!r}: {type(exc).__name__}: {' '.join(str(exc).split()).rstrip('.')}. "
            f"Offline, download it where you have a network (huggingface-cli download {name}) and either set "
            "HF_HUB_OFFLINE=1 with that Hugging Face cache or pass the folder with -P reranker=/path/to/model; "
            "-P reranker=none fuses without reranking."
        ) from None


def reranker_revision(model) -> str | None:
    """The hub commit the cross-encoder was loaded from (None for a local folder)."""
    return loaded_revision(getattr(model, "model", None))


def rerank(
    model, queries: Sequence[str], candidates: Sequence[Sequence[tuple[int, str]]], batch_size: int
) -> list[list[tuple[int, float]]]:
    """Per query, its (id, text) candidates as (id, cross-encoder score), best first.

    All pairs of all queries go through the model in one call (full batches);
    ties keep the candidates' input order.
    """
    pairs = [(query, text) for query, group in zip(queries, candidates) for _, text in group]
    scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False) if pairs else []
    out, start = [], 0
    for group in candidates:
        mine = [float(s) for s in scores[start : start + len(group)]]
        start += len(group)
        order = sorted(range(len(group)), key=lambda i: -mine[i])
        out.append([(group[i][0], mine[i]) for i in order])
    return out

"""Loading a sentence-transformers encoder and encoding passages into a cached matrix."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from rag_bench.api import RagBenchError, loaded_revision

from .presets import ResolvedModel

#: Passages encoded per call to SentenceTransformer.encode; a multiple of the
#: batch size, small enough for a smooth progress bar, large enough to be cheap.
BATCHES_PER_CHUNK = 16


def _modules():
    try:  # sentence-transformers >= 5.6 moved the module classes here
        from sentence_transformers.sentence_transformer import modules
    except ImportError:
        from sentence_transformers import models as modules
    return modules


@contextmanager
def torch_threads(count: int | None):
    """Run the block with `count` torch intra-op threads (None: leave torch's setting), then restore it.

    On a CPU shared with other busy processes, fewer threads avoid OpenMP
    threads waiting for each other: one short query took ~9 ms with 1 thread
    and 100-500 ms with 2 on the 2 shared cores of the development machine.
    """
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_encoder(model: ResolvedModel, device: str | None):
    """A SentenceTransformer for `model`; one RagBenchError naming it when it cannot be loaded."""
    from sentence_transformers import SentenceTransformer

    source = model.load_from()
    try:
        if model.pooling is None:
            encoder = SentenceTransformer(source, device=device)
        else:
            modules = _modules()
            transformer = modules.Transformer(source, max_seq_length=model.max_length)
            dim = transformer.auto_model.config.hidden_size
            encoder = SentenceTransformer(
                modules=[transformer, modules.Pooling(dim, pooling_mode=model.pooling), modules.Normalize()],
                device=device,
            )
    except Exception as exc:  # hub, file and config errors all mean: this model is not available
        raise RagBenchError(
            f"dense: cannot load the encoder {model.name!r} ({source}): {type(exc).__name__}: {' '.join(str(exc).split()).rstrip('.')}. "
            "Offline, download it where you have a network (huggingface-cli download "
            f"{model.model_id}) and either set HF_HUB_OFFLINE=1 with that Hugging Face cache, or pass the "
            "folder with -P model=/path/to/model; -P model=minilm works with no download."
        ) from None
    if model.max_length is not None:
        encoder.max_seq_length = model.max_length
    return encoder


def encoder_revision(encoder, model: ResolvedModel) -> str | None:
    """The encoder's revision: its hub commit, or for a model shipped in a pip package that package's version."""
    first = encoder[0] if len(encoder) else None
    commit = loaded_revision(getattr(first, "auto_model", None))
    return commit or model.package_revision()


def encode(encoder, texts: Sequence[str], prefix: str, batch_size: int) -> np.ndarray:
    """L2-normalised float32 embeddings of `prefix + text` for each text."""
    return encoder.encode(
        [prefix + text for text in texts],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    ).astype(np.float32, copy=False)


def encode_to_file(encoder, texts: Sequence[str], prefix: str, batch_size: int, path: Path) -> None:
    """Encode `texts` into an .npy matrix at `path` (written through a temporary file).

    Texts are taken longest first, as SentenceTransformer.encode orders them
    internally, so chunking for the progress bar costs no extra padding; rows
    are stored in corpus order.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part.npy")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunk = batch_size * BATCHES_PER_CHUNK
    matrix = None
    with tqdm(total=len(texts), unit="passage", desc="dense: encoding passages") as bar:
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            vectors = encode(encoder, [texts[i] for i in rows], prefix, batch_size)
            if matrix is None:
                matrix = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(len(texts), vectors.shape[1]))
            matrix[rows] = vectors
            bar.update(len(rows))
    if matrix is None:
        raise RagBenchError("dense: the task's corpus is empty; there is nothing to encode")
    matrix.flush()
    del matrix
    os.replace(partial, path)

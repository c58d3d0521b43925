"""FAISS inner-product indexes over normalised embeddings: exact (flat), HNSW or IVF."""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

INDEX_KINDS = ("flat", "hnsw", "ivf")
HNSW_EF_CONSTRUCTION = 200
#: FAISS wants about 39 training points per IVF list; fewer lists are used on small corpora.
IVF_POINTS_PER_LIST = 39


def build(embeddings: np.ndarray, params) -> faiss.Index:
    """An index of kind `params.index` holding `embeddings` (rows in corpus order)."""
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    count, dim = vectors.shape
    if params.index == "flat":
        index = faiss.IndexFlatIP(dim)
    elif params.index == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        nlist = params.nlist or max(1, round(4 * math.sqrt(count)))
        nlist = max(1, min(nlist, count // IVF_POINTS_PER_LIST))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
    index.add(vectors)
    return index


def configure(index: faiss.Index, params) -> None:
    """Search-time settings, applied after building or loading."""
    if params.index == "hnsw":
        index.hnsw.efSearch = max(params.ef_search, 1)
    elif params.index == "ivf":
        index.nprobe = max(1, min(params.nprobe, index.nlist))


def save(index: faiss.Index, path: Path) -> None:
    partial = path.with_name(path.name + ".part")
    faiss.write_index(index, str(partial))
    partial.replace(path)


def size_bytes(index: faiss.Index) -> int:
    """Bytes of `index` serialised: what `save` would write to its file."""
    return int(faiss.serialize_index(index).size)


def load(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))


def search(index: faiss.Index, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Top-k (row, inner product) per query; rows FAISS could not fill (-1) are dropped."""
    k = min(k, index.ntotal)
    if k < 1:
        return [[] for _ in range(len(queries))]
    scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return [[(int(r), float(s)) for r, s in zip(row_r, row_s) if r >= 0] for row_r, row_s in zip(rows, scores)]

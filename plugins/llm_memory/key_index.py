"""Top-k inner-product search over a set of keys: exact up to a size, an approximate FAISS HNSW graph above it.

llm_memory routes a query by scoring every passage key, a flat index whose
cost grows with the number of passages. `benchmarks/routing_scale.py`
measures that cost against FAISS HNSW and IVF for up to a million simulated
unit-norm keys (the curve, the command and the machine are in
docs/BENCHMARKS.md); `EXACT_MAX_KEYS` is the size chosen from it, above which
HNSW answers in a fraction of the time with most of the exact top-k.

    index = KeyIndex(keys)                 # (N, d) unit-norm keys, torch or NumPy
    rows, scores = index.search(queries, k)  # (B, k) each, best first

The exact path is ``torch.topk(queries @ keys.T, k)``, on the keys' device.
The HNSW path needs ``faiss`` (``pip install 'rag-bench[memory]'``); without
it, a warning is given and the search stays exact. How much of the exact top-k
the approximate path finds depends on the keys: `KeyIndex.recall` measures it
on a sample of queries. ``torch`` is imported when an index is made, not with
this module.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where keys are handled, not with the module (the plugin loads without it)
    import torch

#: Largest key count searched exactly by default: the largest size measured at which the flat product still
#: takes <= 1 ms per query on the 2-core machine (benchmarks/routing_scale.py); above it, on keys with structure,
#: HNSW at `HNSW_EF_SEARCH` is 5-26x faster at recall@20 >= 0.97 (docs/BENCHMARKS.md).
EXACT_MAX_KEYS = 100_000
#: HNSW graph degree and build-time beam (FAISS's efConstruction default): a million keys build in minutes on one core.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
#: Search-time beam (raised to k when k is larger): recall against time.
HNSW_EF_SEARCH = 128


def _faiss() -> Any | None:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


class KeyIndex:
    """Inner-product top-k over `keys` (N x d): exact while N <= `threshold`, FAISS HNSW above.

    `method` says which path answers ("exact" or "hnsw"). `search(queries, k)`
    returns ``(rows, scores)``, two (B, k) tensors (int64 rows into the keys,
    float32 inner products), best first; k is capped at N. The HNSW path may
    miss some of the exact top k (recall < 1) and fills rows it could not
    reach with -1 (only possible when k is close to N). `add(keys)` appends
    keys (rows N, N+1, ...), switching to HNSW when the total passes
    `threshold`.
    """

    def __init__(self, keys: torch.Tensor | np.ndarray, threshold: int = EXACT_MAX_KEYS, m: int = HNSW_M,
                 ef_construction: int = HNSW_EF_CONSTRUCTION, ef_search: int = HNSW_EF_SEARCH):
        if threshold < 0 or m < 2 or ef_construction < 1 or ef_search < 1:
            raise ValueError("threshold must be >= 0, m >= 2, ef_construction and ef_search >= 1")
        keys = _as_tensor(keys)
        if keys.ndim != 2:
            raise ValueError(f"keys must be a (N, d) matrix, got shape {tuple(keys.shape)}")
        self.threshold, self.m, self.ef_construction, self.ef_search = threshold, m, ef_construction, ef_search
        self.dim = keys.shape[1]
        self._keys: torch.Tensor | None = keys
        self._hnsw: Any = None
        self._count = keys.shape[0]
        if self._count > threshold:
            self._to_hnsw()

    @property
    def method(self) -> str:
        return "exact" if self._hnsw is None else "hnsw"

    def __len__(self) -> int:
        return self._count

    def nbytes(self) -> int:
        """Bytes the index holds: the key matrix, or the HNSW graph with its copy of the keys."""
        if self._hnsw is None:
            return self._keys.element_size() * self._keys.nelement()
        return int(_faiss().serialize_index(self._hnsw).nbytes)

    def search(self, queries: torch.Tensor | np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The top-k rows and inner products per query: two (B, k) tensors, best first."""
        queries = _as_tensor(queries)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be (B, {self.dim}), got shape {tuple(queries.shape)}")
        k = min(k, self._count)
        if self._hnsw is None:
            top = (queries.to(device=self._keys.device, dtype=self._keys.dtype) @ self._keys.T).topk(k, dim=-1)
            return top.indices, top.values
        self._hnsw.hnsw.efSearch = max(self.ef_search, k)
        import torch

        scores, rows = self._hnsw.search(_float32(queries), k)
        return torch.from_numpy(rows), torch.from_numpy(scores)

    def recall(self, queries: torch.Tensor | np.ndarray, k: int) -> float:
        """Mean share of each query's exact top-k that `search` returns (1.0 on the exact path).

        Approximate search is only as good as the keys allow: on keys without
        structure (isotropic) HNSW misses most of the top-k (docs/BENCHMARKS.md),
        so check real queries against real keys before relying on it.
        """
        if self._hnsw is None:
            return 1.0
        rows, _ = self.search(queries, k)
        k = rows.shape[1]
        exact = _faiss().downcast_index(self._hnsw.storage).search(_float32(_as_tensor(queries)), k)[1]
        return float(np.mean([len(set(a.tolist()) & set(e.tolist())) / k for a, e in zip(rows.numpy(), exact)]))

    def add(self, keys: torch.Tensor | np.ndarray) -> None:
        """Append keys; they get the next row numbers."""
        keys = _as_tensor(keys)
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"keys must be (n, {self.dim}), got shape {tuple(keys.shape)}")
        self._count += keys.shape[0]
        if self._hnsw is not None:
            self._hnsw.add(_float32(keys))
            return
        import torch

        self._keys = torch.cat([self._keys, keys.to(device=self._keys.device, dtype=self._keys.dtype)])
        if self._count > self.threshold:
            self._to_hnsw()

    def _to_hnsw(self) -> None:
        faiss = _faiss()
        if faiss is None:
            warnings.warn(f"KeyIndex: {self._count:,} keys is above the exact threshold ({self.threshold:,}) but faiss "
                          "is not installed (pip install 'rag-bench[memory]'); searching exactly", stacklevel=3)
            return
        index = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.add(_float32(self._keys))
        self._hnsw, self._keys = index, None  # the graph keeps its own copy of the keys


def _as_tensor(values: torch.Tensor | np.ndarray) -> torch.Tensor:
    import torch

    return values.detach() if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values))


def _float32(values: torch.Tensor) -> np.ndarray:
    import torch

    return np.ascontiguousarray(values.detach().to("cpu", torch.float32).numpy())

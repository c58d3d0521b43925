"""Bootstrap confidence intervals for every aggregate."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..metric import Aggregate

RESAMPLES = 1000
SEED = 0


def _resample_indices(n: int) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, n, size=(RESAMPLES, n))


def mean_with_ci(values: Sequence[float]) -> Aggregate:
    """Mean and percentile-bootstrap 95% interval (1000 resamples, fixed seed: reproducible)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return Aggregate(float("nan"), None, 0)
    means = arr[_resample_indices(arr.size)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Aggregate(float(arr.mean()), (float(low), float(high)), int(arr.size))


def statistic_with_ci(values: Sequence[float], statistic: Callable[[np.ndarray], np.ndarray]) -> Aggregate:
    """Any row-wise statistic (e.g. a percentile) with a bootstrap 95% interval.

    `statistic` takes a 2-D array and reduces along axis 1.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return Aggregate(float("nan"), None, 0)
    point = float(statistic(arr[None, :])[0])
    stats = statistic(arr[_resample_indices(arr.size)])
    low, high = np.percentile(stats, [2.5, 97.5])
    return Aggregate(point, (float(low), float(high)), int(arr.size))

"""Is a difference between two rows real? Paired bootstrap over per-question scores.

Two runs of the same task and split score the same questions, so the test is
paired: resample question ids with replacement, average the per-question
differences, and call the difference significant when the 95% percentile
interval of that mean excludes zero (Koehn 2004; Dror et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
SEED = 0
ALPHA = 0.05
# Metrics where a smaller value is better (efficiency, RAGChecker's error rates).
LOWER_IS_BETTER = ("latency", "footprint", "prepare_s", "peak_rss", "hallucination", "noise_sensitivity", "unsupported")


def lower_is_better(metric: str) -> bool:
    """True for metrics where less is better."""
    return any(part in metric for part in LOWER_IS_BETTER)


@dataclass(frozen=True)
class Comparison:
    """A paired test of row a against row b on one metric."""

    mean_diff: float
    ci95: tuple[float, float]
    p_value: float
    n: int

    @property
    def significant(self) -> bool:
        return self.n > 0 and not (self.ci95[0] <= 0.0 <= self.ci95[1])


def paired_bootstrap(a: dict[str, float], b: dict[str, float], resamples: int = RESAMPLES, seed: int = SEED) -> Comparison | None:
    """Compare per-question scores on the question ids both have; None when they share none."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    diff = np.array([a[q] - b[q] for q in shared], dtype=float)
    if not diff.any():  # identical on every question: nothing to resample
        return Comparison(0.0, (0.0, 0.0), 1.0, len(shared))
    idx = np.random.default_rng(seed).integers(0, diff.size, size=(resamples, diff.size))
    means = diff[idx].mean(axis=1)
    low, high = np.percentile(means, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    # Two-sided p: how often the resampled mean falls on the other side of zero.
    p = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    return Comparison(float(diff.mean()), (float(low), float(high)), p, int(diff.size))


@dataclass(frozen=True)
class Tie:
    """Row `other` is not significantly different from the column's best row on `metric`."""

    metric: str
    best: int
    other: int
    comparison: Comparison


def best_row(values: list[float | None], metric: str) -> int | None:
    """Index of the best value in a column (None when the column is empty)."""
    present = [(v, i) for i, v in enumerate(values) if v is not None and v == v]
    if not present:
        return None
    return (min if lower_is_better(metric) else max)(present)[1]


def ties_with_best(metric: str, values: list[float | None], scores: list[dict[str, float]]) -> dict[int, Comparison]:
    """For one column: rows whose difference from the best row is not significant."""
    best = best_row(values, metric)
    out: dict[int, Comparison] = {}
    if best is None:
        return out
    for i, row_scores in enumerate(scores):
        if i == best or not row_scores or values[i] is None:
            continue
        comparison = paired_bootstrap(scores[best], row_scores)
        if comparison is not None and not comparison.significant:
            out[i] = comparison
    return out


def pairwise_ties(metrics: list[str], scores: list[dict[str, dict[str, float]]]) -> dict[tuple[int, int], list[tuple[str, Comparison]]]:
    """For every pair of rows, the metrics on which their difference is not significant."""
    out: dict[tuple[int, int], list[tuple[str, Comparison]]] = {}
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            for metric in metrics:
                a, b = scores[i].get(metric), scores[j].get(metric)
                if not a or not b:
                    continue
                comparison = paired_bootstrap(a, b)
                if comparison is not None and not comparison.significant:
                    out.setdefault((i, j), []).append((metric, comparison))
    return out

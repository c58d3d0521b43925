"""Figures that measure the machine (wall times, memory) rather than the evidence, kept apart from the scores.

A run writes its scores to ``metrics.json`` and these measurements to
``measurements.json``, so that a resumed run's scores file is byte for byte
the one an uninterrupted run writes; only the measurements differ. Latency,
preparation time and peak memory are measurements by name; a metric plugin
adds its own machine-dependent names with `Metric.measurements`.
"""

from __future__ import annotations

from typing import Any

#: Name prefixes of the harness's own machine-dependent figures.
MACHINE_DEPENDENT = ("latency", "prepare_s", "peak_rss")


def measured_prefixes() -> tuple[str, ...]:
    """The harness's prefixes plus every registered metric's `measurements`."""
    from .registry import registry

    extra = [name for metric in registry().metrics.entries.values() for name in getattr(metric.value, "measurements", ())]
    return MACHINE_DEPENDENT + tuple(extra)


def is_measurement(name: str, prefixes: tuple[str, ...] | None = None) -> bool:
    """Whether an aggregate named `name` measures the machine (not compared by verify, not in metrics.json): it is
    one of the measured names, or one followed by ``_``, ``.`` or ``@`` (``latency_p50_ms``, ``peak_rss_mb``; not
    ``train_steps`` for ``train_s``)."""
    for prefix in prefixes if prefixes is not None else measured_prefixes():
        if name == prefix or (name.startswith(prefix) and name[len(prefix)] in "_.@"):
            return True
    return False


def split_aggregates(aggregate: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scores, measurements) of one aggregate dict, each in the original key order."""
    prefixes = measured_prefixes()
    scores = {k: v for k, v in aggregate.items() if not is_measurement(k, prefixes)}
    measured = {k: v for k, v in aggregate.items() if is_measurement(k, prefixes)}
    return scores, measured

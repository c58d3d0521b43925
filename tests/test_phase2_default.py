"""The phase-2 section names the provider's default cell and the grid's best, from the provider's own Params."""

from __future__ import annotations

from rag_bench.study.report.phase2 import default_cell, default_line, provider_defaults


def _summary(values: dict[str, tuple[float, float, float]], params=None) -> dict:
    return {
        "provider": "llm_memory", "params": params or {"max_train_steps": 300},
        "cells": [{"settings": {"z_dim": z}, "metrics": {"evidence_rougeL": {"value": v, "ci95": [lo, hi], "n": 10}}}
                  for z, (v, lo, hi) in values.items()],
    }


def test_the_default_is_found_from_the_providers_params():
    default = provider_defaults("llm_memory")["z_dim"]
    summary = _summary({"64": (0.1, 0.09, 0.11), default: (0.2, 0.19, 0.21)})
    assert default_cell(summary)["settings"] == {"z_dim": default}
    assert default_line(summary) == f"The default, `z_dim={default}`, is this grid's best on evidence_rougeL: 0.200 [0.190, 0.210]."


def test_a_better_cell_is_named_and_whether_the_intervals_overlap():
    default = provider_defaults("llm_memory")["z_dim"]
    apart = default_line(_summary({"512": (0.3, 0.28, 0.32), default: (0.2, 0.19, 0.21)}))
    assert "best evidence_rougeL: `z_dim=512`" in apart and "do not overlap" in apart
    close = default_line(_summary({"512": (0.21, 0.18, 0.24), default: (0.2, 0.19, 0.21)}))
    assert "overlap: no difference shown" in close


def test_a_grid_without_the_default_says_so():
    line = default_line(_summary({"7": (0.1, 0.0, 0.2)}))
    assert line.startswith("The provider's default is not among these cells")
    fixed_elsewhere = _summary({provider_defaults("llm_memory")["z_dim"]: (0.1, 0.0, 0.2)},
                               params={"m_tokens": "3"})  # the sweep fixes another setting off its default
    assert default_cell(fixed_elsewhere) is not None  # fixed params are the sweep's, not varied: the cell still counts

"""A sweep file: one provider on one task, fixed settings and a grid of settings to vary.

    name: memory-z-m             # optional; default: the file's stem
    provider: llm_memory
    task: nq_5k
    split: dev                   # optional, as `rag-bench run --split`; default: dev where the task has one
    limit: 200                   # optional, as `--limit`
    k: [1, 5, 20]                # optional, as `-k`
    reader_k: 5                  # optional, as `--reader-k`
    reader: none                 # optional, NAME or NAME:MODEL, as `--reader`
    reader_params: {}            # optional, as `-R key=value`
    seed: 0
    batch_size: 32
    params: {base: tiny}         # fixed provider settings, as `-P key=value`
    grid:                        # each combination is one cell, an ordinary run
      z_dim: [64, 256]
      m_tokens: [1, 4]
    metrics: [recall@5, evidence_rougeL]   # the summary's columns and heat-maps
    resources: {gpus: 1, mem: 64G, time: "8:00:00"}   # optional, per cell, for --executor slurm|ray (resources.py)
    slurm: {partition: gpu}                           # optional, for --executor slurm (resources.py)

Values are turned into the strings `-P` would receive, so a cell is exactly
the run that `rag-bench run ... -P z_dim=64 ...` makes and shares its folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import RagBenchError
from .resources import Resources, SlurmOptions, parse_resources, parse_slurm

KEYS = ("name", "provider", "task", "split", "limit", "k", "reader_k", "reader", "reader_params", "seed", "batch_size",
        "params", "grid", "metrics", "resources", "slurm")
#: Sweeps pick settings, so they score the dev split (where the task has one) unless the file names another split:
#: the test split is for the published row of the setting a sweep chose.
DEFAULT_SPLIT = "dev"
DEFAULT_READER_K = 5
REQUIRED = ("provider", "task", "grid")
DEFAULT_METRICS = ("recall@5", "evidence_rougeL")


def setting_text(value: Any) -> str:
    """A YAML value as the `-P key=value` string that means the same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(setting_text(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its varied settings (in grid order) and the full provider settings of its run."""

    varied: tuple[tuple[str, str], ...]
    provider_params: dict[str, str] = field(hash=False)

    @property
    def name(self) -> str:
        """`z_dim=64,m_tokens=1`: unique within a sweep, readable in tables and logs."""
        return ",".join(f"{key}={value}" for key, value in self.varied)

    @property
    def slug(self) -> str:
        """The name as a safe file name."""
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.name.replace(",", "__"))


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file."""

    name: str
    provider: str
    task: str
    grid: dict[str, tuple[str, ...]]
    params: dict[str, str] = field(default_factory=dict)
    split: str | None = None
    limit: int | None = None
    ks: tuple[int, ...] | None = None
    reader_k: int = DEFAULT_READER_K
    reader: str = "none"
    reader_params: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 32
    metrics: tuple[str, ...] = DEFAULT_METRICS
    resources: Resources = Resources()
    slurm: SlurmOptions = SlurmOptions()
    source: Path | None = None

    @property
    def axes(self) -> list[str]:
        """The varied settings, in the file's order."""
        return list(self.grid)

    def cells(self) -> list[Cell]:
        """Every combination of the grid, first axis slowest."""
        out = []
        for combo in itertools.product(*self.grid.values()):
            varied = tuple(zip(self.grid, combo))
            out.append(Cell(varied, {**self.params, **dict(varied)}))
        return out


def _fail(where: str, message: str) -> RagBenchError:
    return RagBenchError(f"{where}: {message}")


def _settings(where: str, key: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(where, f"{key} must be a mapping of setting: value, e.g. {key}: {{base: tiny}}")
    return {str(k): setting_text(v) for k, v in raw.items()}


def _int(where: str, key: str, raw: Any, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise _fail(where, f"{key} must be an integer >= {minimum}, got {raw!r}")
    return raw


def parse_spec(data: Any, where: str, default_name: str) -> SweepSpec:
    """Validate a loaded sweep file; every problem is one RagBenchError naming the file and the key."""
    if not isinstance(data, dict):
        raise _fail(where, "expected a mapping with provider, task and grid (see `rag-bench sweep --help`)")
    for key in data:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=2, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise _fail(where, f"unknown key {key!r}.{hint} Keys: {', '.join(KEYS)}.")
    missing = [key for key in REQUIRED if not data.get(key)]
    if missing:
        raise _fail(where, f"missing {', '.join(missing)}")
    grid_raw = data["grid"]
    if not isinstance(grid_raw, dict):
        raise _fail(where, "grid must map each setting to a list of values, e.g. grid: {z_dim: [64, 256]}")
    grid: dict[str, tuple[str, ...]] = {}
    for key, values in grid_raw.items():
        if not isinstance(values, list) or not values:
            raise _fail(where, f"grid.{key} must be a non-empty list of values, e.g. [64, 256]")
        texts = tuple(setting_text(v) for v in values)
        if len(set(texts)) != len(texts):
            raise _fail(where, f"grid.{key} repeats a value: {list(texts)}")
        grid[str(key)] = texts
    params = _settings(where, "params", data.get("params"))
    both = sorted(set(params) & set(grid))
    if both:
        raise _fail(where, f"{', '.join(both)} is both fixed (params) and varied (grid); keep it in one")
    ks = data.get("k")
    if ks is not None:
        ks = ks if isinstance(ks, list) else [ks]
        ks = tuple(_int(where, "k", value, 1) for value in ks)
    metrics = data.get("metrics") or list(DEFAULT_METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    return SweepSpec(
        name=str(data.get("name") or default_name),
        provider=str(data["provider"]),
        task=str(data["task"]),
        grid=grid,
        params=params,
        split=str(data["split"]) if data.get("split") else None,
        limit=_int(where, "limit", data["limit"], 1) if data.get("limit") is not None else None,
        ks=ks,
        reader_k=_int(where, "reader_k", data.get("reader_k", DEFAULT_READER_K), 1),
        reader=str(data.get("reader") or "none"),
        reader_params=_settings(where, "reader_params", data.get("reader_params")),
        seed=_int(where, "seed", data.get("seed", 0), 0),
        batch_size=_int(where, "batch_size", data.get("batch_size", 32), 1),
        metrics=tuple(str(m) for m in metrics),
        resources=parse_resources(data.get("resources"), where),
        slurm=parse_slurm(data.get("slurm"), where),
    )


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RagBenchError(f"{path}: cannot read the sweep file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RagBenchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    spec = parse_spec(data, str(path), path.stem)
    return SweepSpec(**{**spec.__dict__, "source": path})


def with_split(spec: SweepSpec, splits: tuple[str, ...], task_default: str) -> SweepSpec:
    """`spec` with its split settled: the file's, else dev where the task has one, else the task card's default."""
    if spec.split:
        return spec
    return dataclasses.replace(spec, split=DEFAULT_SPLIT if DEFAULT_SPLIT in splits else task_default)

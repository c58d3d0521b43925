"""What one cell asks a cluster for: the spec's optional `resources:` and `slurm:` blocks, and the command line's.

    resources:              # per cell; the slurm and ray executors read it, the local one ignores it
      cpus: 8               # CPU cores (Slurm --cpus-per-task, Ray num_cpus)
      gpus: 1               # GPUs (Slurm --gpus-per-node, Ray num_gpus)
      mem: 64G              # memory: 64G, 512M, 1T, or a number of GB (Slurm --mem, Ray memory)
      time: "8:00:00"       # Slurm time limit: minutes, HH:MM:SS or D-HH:MM:SS
    slurm:                  # Slurm only
      partition: gpu
      account: my-project
      qos: normal
      constraint: a100
      setup: ["module load cuda/12.4", "source ~/venvs/rag-bench/bin/activate"]   # shell lines before the cell
      options: {exclude: node17}                                                 # any other sbatch option

Command-line values (`--cpus-per-cell`, `--slurm-partition`, ...) override the file's.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import RagBenchError

RESOURCE_KEYS = ("cpus", "gpus", "mem", "time")
SLURM_KEYS = ("partition", "account", "qos", "constraint", "setup", "options")
#: The time limit of a Slurm cell when neither the spec nor --slurm-time gives one (submitit's own is 5 minutes).
DEFAULT_SLURM_TIME_MIN = 60

_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$", re.IGNORECASE)
_MEM_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


@dataclass(frozen=True)
class Resources:
    """One cell's request: CPU cores, GPUs, memory in MB and a time limit in minutes (None: the engine's default)."""

    cpus: int | None = None
    gpus: int | None = None
    mem_mb: int | None = None
    time_min: int | None = None

    def override(self, **values: Any) -> "Resources":
        """A copy with every value that is not None replaced (the command line over the file)."""
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class SlurmOptions:
    """Slurm-only submission settings: where the cells go and what runs before each."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)

    def override(self, **values: Any) -> "SlurmOptions":
        """A copy with every value that is not None replaced; `options` are merged, the new ones winning."""
        options = {**self.options, **(values.pop("options", None) or {})}
        return dataclasses.replace(self, options=options, **{k: v for k, v in values.items() if v is not None})


def parse_mem(raw: Any, where: str = "mem") -> int:
    """`64G`, `512M`, `1.5T` or a bare number of GB -> megabytes."""
    if isinstance(raw, bool):
        raise RagBenchError(f"{where}: expected a size such as 64G or 512M, got {raw!r}")
    if isinstance(raw, (int, float)):
        raw = f"{raw}G"
    match = _MEM.match(str(raw))
    if not match or float(match.group(1)) <= 0:
        raise RagBenchError(f"{where}: expected a size such as 64G or 512M, got {raw!r}")
    return max(1, round(float(match.group(1)) * _MEM_MB[(match.group(2) or "G").upper()]))


def parse_time(raw: Any, where: str = "time") -> int:
    """A Slurm time limit -> whole minutes (rounded up).

    Accepts what sbatch --time does: `90` (minutes), `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.
    """
    hint = f"{where}: expected minutes or a Slurm time such as 4:00:00 or 1-12:00:00, got {raw!r}"
    if isinstance(raw, bool):
        raise RagBenchError(hint)
    text = str(raw).strip()
    days, _, rest = text.rpartition("-") if "-" in text else ("0", "", text)
    parts = rest.split(":")
    if not (days.isdigit() and all(p.isdigit() for p in parts)) or len(parts) > 3:
        raise RagBenchError(hint)
    numbers = [int(p) for p in parts]
    if "-" in text:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = (numbers + [0, 0])[:3]
    elif len(numbers) == 1:
        hours, minutes, seconds = 0, numbers[0], 0
    elif len(numbers) == 2:
        hours, minutes, seconds = 0, numbers[0], numbers[1]
    else:
        hours, minutes, seconds = numbers
    total = int(days) * 24 * 60 + hours * 60 + minutes + (1 if seconds else 0)
    if total <= 0:
        raise RagBenchError(hint)
    return total


def _count(where: str, raw: Any, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise RagBenchError(f"{where} must be an integer >= {minimum}, got {raw!r}")
    return raw


def _mapping(where: str, raw: Any, keys: tuple[str, ...], example: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RagBenchError(f"{where} must be a mapping, e.g. {example}")
    for key in raw:
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.5)
            hint = f" Did you mean: {close[0]}?" if close else ""
            raise RagBenchError(f"{where}: unknown key {key!r}.{hint} Keys: {', '.join(keys)}.")
    return raw


def parse_resources(raw: Any, where: str) -> Resources:
    """Validate a spec's `resources:` block (absent: every value left to the engine)."""
    data = _mapping(f"{where}: resources", raw, RESOURCE_KEYS, "resources: {gpus: 1, mem: 64G, time: '4:00:00'}")
    return Resources(
        cpus=_count(f"{where}: resources.cpus", data["cpus"], 1) if data.get("cpus") is not None else None,
        gpus=_count(f"{where}: resources.gpus", data["gpus"], 0) if data.get("gpus") is not None else None,
        mem_mb=parse_mem(data["mem"], f"{where}: resources.mem") if data.get("mem") is not None else None,
        time_min=parse_time(data["time"], f"{where}: resources.time") if data.get("time") is not None else None,
    )


def parse_slurm(raw: Any, where: str) -> SlurmOptions:
    """Validate a spec's `slurm:` block."""
    data = _mapping(f"{where}: slurm", raw, SLURM_KEYS, "slurm: {partition: gpu, account: my-project}")
    setup = data.get("setup") or []
    if isinstance(setup, str):
        setup = [setup]
    if not isinstance(setup, list) or not all(isinstance(line, str) for line in setup):
        raise RagBenchError(f"{where}: slurm.setup must be a list of shell lines")
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise RagBenchError(f"{where}: slurm.options must map sbatch options to values, e.g. {{exclude: node17}}")
    text = {key: (str(data[key]) if data.get(key) is not None else None) for key in ("partition", "account", "qos",
                                                                                    "constraint")}
    return SlurmOptions(**text, setup=tuple(setup), options={str(k): str(v) for k, v in options.items()})


def parse_option(text: str) -> tuple[str, str]:
    """`--slurm-option KEY=VALUE` -> (KEY, VALUE)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise RagBenchError(f"--slurm-option expects KEY=VALUE (an sbatch option without its dashes), got {text!r}")
    return key.strip().lstrip("-"), value.strip()

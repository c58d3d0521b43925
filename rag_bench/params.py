"""Turn `-P key=value` strings into a plugin's typed settings dataclass; `Configurable`, the settings part that
providers and readers share."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, ClassVar

from .errors import RagBenchError


@dataclasses.dataclass(frozen=True)
class NoParams:
    """Settings of a plugin that takes none."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(owner: str, key: str, raw: Any, kind: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if raw.lower() in {"none", "null", ""} and len(options) < len(typing.get_args(kind)):
            return None
        kind = options[0]
    try:
        if kind is bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if typing.get_origin(kind) in (tuple, list):
            item = typing.get_args(kind)[0] if typing.get_args(kind) else str
            return tuple(_convert(owner, key, part.strip(), item) for part in raw.split(",") if part.strip())
    except ValueError:
        raise RagBenchError(f"{owner}: -P {key}={raw!r} is not a valid {getattr(kind, '__name__', kind)}") from None
    return raw


def check_keys(params_type: type, keys: typing.Iterable[str], owner: str) -> None:
    """Fail on the first key that is not a setting of `params_type`, suggesting close names."""
    fields = [f.name for f in dataclasses.fields(params_type)]
    for key in keys:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(fields)) or "none"
            raise RagBenchError(f"{owner} has no setting {key!r}.{hint} Its settings: {known}.")


def parse_params(params_type: type, raw: dict[str, Any], owner: str) -> Any:
    """Build `params_type` (a dataclass) from user strings, with one clear error per bad key."""
    check_keys(params_type, raw, owner)
    hints = typing.get_type_hints(params_type)
    values = {key: _convert(owner, key, value, hints[key]) for key, value in raw.items()}
    try:
        return params_type(**values)
    except (TypeError, ValueError) as exc:
        raise RagBenchError(f"{owner}: {exc}") from None


class Configurable:
    """The settings part of a plugin class (`EvidenceProvider`, `Reader`): a frozen dataclass `Params` the user
    sets (``-P``/``-R key=value``), the instance's `params`, and what of them a run records."""

    Params: ClassVar[type] = NoParams
    #: Settings that change speed or robustness, not results (threads, concurrency, decoding limits): recorded in
    #: the manifest and the run's id, left out of `fixed_settings` (a provider's cache key, a reader's part of
    #: the configuration hash), so changing one reuses prepared state or resumes a run.
    runtime_settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Any = None):
        self.params = params if params is not None else self.Params()

    @classmethod
    def from_strings(cls, raw: dict[str, Any], owner: str) -> Any:
        """An instance with its `Params` parsed from user strings (`parse_params`); `owner` names it in errors."""
        return cls(parse_params(cls.Params, raw, owner))

    def settings(self) -> dict[str, Any]:
        """The resolved settings, JSON-ready, for the manifest; override to add resolved values or drop secrets."""
        return params_to_dict(self.params)

    def fixed_settings(self) -> dict[str, Any]:
        """`settings` less `runtime_settings`."""
        return {k: v for k, v in self.settings().items() if k not in self.runtime_settings}


def parse_assignments(pairs: typing.Iterable[str]) -> dict[str, str]:
    """Split `key=value` strings from the command line."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RagBenchError(f"-P {pair!r}: expected key=value, e.g. -P k1=0.9")
        out[key.strip()] = value.strip()
    return out


def parse_ks(value: str | None) -> tuple[int, ...] | None:
    """`-k 1,5,20` -> (1, 5, 20); None or empty -> None (the task card's cut-offs)."""
    if not value:
        return None
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise RagBenchError(f"-k {value!r}: expected comma-separated integers, e.g. -k 1,5,20") from None


def params_to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready settings (tuples become lists) for manifests and fingerprints."""
    return json_ready(dataclasses.asdict(params))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def parse_steps(text: str) -> list[int]:
    """Step counts from a comma-separated list (any order, repeats allowed), sorted and de-duplicated."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        steps = [int(part) for part in parts]
    except ValueError:
        steps = []
    if not steps or any(s < 0 for s in steps):
        raise RagBenchError(f"--steps {text!r}: expected comma-separated step counts >= 0, e.g. --steps 0,10,25,50")
    return sorted(set(steps))

"""What the plugins registered: providers, tasks, readers and metrics, by name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import RagBenchError
from .plugins import plugin_manager, warn

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    """One registered thing and the plugin that registered it."""

    name: str
    value: T
    plugin: str


@dataclass
class Kind(Generic[T]):
    label: str
    entries: dict[str, Entry[T]] = field(default_factory=dict)

    def get(self, name: str) -> T:
        if name in self.entries:
            return self.entries[name].value
        close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        known = ", ".join(sorted(self.entries)) or "none"
        raise RagBenchError(
            f"unknown {self.label} {name!r}.{hint} Registered {self.label}s: {known}. "
            f"`rag-bench plugins` lists them; a {self.label} from another package needs that package installed."
        )

    def names(self) -> list[str]:
        return sorted(self.entries)


@dataclass
class Registry:
    providers: Kind[Any]
    tasks: Kind[Any]
    readers: Kind[Any]
    metrics: Kind[Any]


_registry: Registry | None = None

_HOOKS = {
    "providers": "register_providers",
    "tasks": "register_tasks",
    "readers": "register_readers",
    "metrics": "register_metrics",
}


def _collect(kind: Kind[Any], hook_name: str) -> None:
    pm = plugin_manager()
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        staged: list[Entry[Any]] = []

        def register(*args: Any, _staged=staged, _plugin=impl.plugin_name) -> None:
            if hook_name == "register_tasks":
                (definition,) = args
                _staged.append(Entry(definition.card.name, definition, _plugin))
            else:
                name, value = args
                _staged.append(Entry(name, value, _plugin))

        try:
            impl.function(register=register)
        except Exception as exc:
            from .plugins import _load, _one_line

            message = f"hook {hook_name} raised {_one_line(exc)}"
            info = _load().infos.get(impl.plugin_name)
            if info is not None:
                info.error = message if info.error is None else f"{info.error}; {message}"
            warn(f"plugin {impl.plugin_name!r}: {message}; its {kind.label}s were skipped")
            continue
        for entry in staged:
            previous = kind.entries.get(entry.name)
            if previous is not None:
                warn(
                    f"{kind.label} {entry.name!r} is registered by both {previous.plugin!r} and "
                    f"{entry.plugin!r}; keeping {previous.plugin!r}'s"
                )
                continue
            kind.entries[entry.name] = entry


def registry() -> Registry:
    """Everything registered by the loaded plugins (collected on first use)."""
    global _registry
    if _registry is None:
        reg = Registry(Kind("provider"), Kind("task"), Kind("reader"), Kind("metric"))
        for attr, hook_name in _HOOKS.items():
            _collect(getattr(reg, attr), hook_name)
        _registry = reg
    return _registry


def reset_registry() -> None:
    global _registry
    _registry = None

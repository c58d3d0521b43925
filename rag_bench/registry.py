"""What the plugins registered: providers, tasks, readers and metrics, by name.

Built on `plugins` (which never imports this module): the registry is
collected on first use and again whenever `plugins.generation()` changes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import RagBenchError
from . import plugins
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
        """The registered value; an unknown name is one RagBenchError that says why it is missing."""
        if name in self.entries:
            return self.entries[name].value
        raise RagBenchError(self._unknown(name))

    def _unknown(self, name: str) -> str:
        broken = plugins.problems()
        # A broken plugin of the same name is almost certainly the one that registers it.
        same = [info for info in broken if info.name == name]
        if same:
            return (f"{self.label} {name!r} is not available: {plugins.describe_problem(same[0])}. "
                    "Fix that error (`rag-bench plugins` shows it) and run the command again.")
        close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        known = ", ".join(sorted(self.entries)) or "none"
        if broken:
            listed = "; ".join(plugins.describe_problem(info) for info in broken)
            why = f" Installed but broken, so not registered: {listed}."
        else:
            why = f" A {self.label} from another package needs that package installed."
        return f"unknown {self.label} {name!r}.{hint} Registered {self.label}s: {known}.{why} `rag-bench plugins` lists them."

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self.entries)


@dataclass
class Registry:
    providers: Kind[Any]
    tasks: Kind[Any]
    readers: Kind[Any]
    metrics: Kind[Any]


_registry: Registry | None = None
_registry_generation: int | None = None

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
            message = f"hook {hook_name} raised {plugins.one_line(exc)}"
            plugins.record_problem(impl.plugin_name, message)
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
    global _registry, _registry_generation
    if _registry is None or _registry_generation != plugins.generation():
        reg = Registry(Kind("provider"), Kind("task"), Kind("reader"), Kind("metric"))
        for attr, hook_name in _HOOKS.items():
            _collect(getattr(reg, attr), hook_name)
        _registry, _registry_generation = reg, plugins.generation()
    return _registry


def reset_registry() -> None:
    """Collect again on next use."""
    global _registry
    _registry = None

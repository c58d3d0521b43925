"""The plugin manager: loads every plugin from the `rag_bench` entry-point group.

Built-in plugins take the same path as third-party ones. A plugin that fails
to import, or whose hook raises, is recorded in `problems()` and left out;
the others keep working.

Imports run one way: `registry` builds on this module, never the reverse.
`generation()` changes whenever the set of plugins changes, which is how the
registry knows to collect again.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "rag_bench"


@dataclass
class PluginInfo:
    """What `rag-bench plugins` shows for one plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PluginSet:
    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]


_generation = 0


def generation() -> int:
    """A counter bumped whenever plugins are added or reloaded (the registry re-collects then)."""
    return _generation


def one_line(exc: BaseException) -> str:
    """The last line of an exception as Python prints it (`ModuleNotFoundError: No module named 'x'`)."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]


@lru_cache(maxsize=1)
def _load() -> PluginSet:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist else None,
            version=dist.version if dist else None,
        )
        infos[ep.name] = info
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"failed to load: {one_line(exc)}"
            continue
        info.hooks = sorted(impl.name for impl in _hookimpls_of(pm, module))
    return PluginSet(pm, infos)


def _hookimpls_of(pm: pluggy.PluginManager, plugin: Any) -> list[Any]:
    return [caller for caller in pm.get_hookcallers(plugin) or []]


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded on first use (never at import)."""
    return _load().manager


def plugin_infos() -> list[PluginInfo]:
    """Every plugin found, loaded or broken, in name order."""
    return list(_load().infos.values())


def register_plugin(plugin: Any, name: str) -> None:
    """Register an in-process plugin object (used by tests and notebooks)."""
    global _generation
    plugin_manager().register(plugin, name=name)
    _load().infos[name] = PluginInfo(name=name, module=repr(plugin), distribution=None, version=None)
    _load().infos[name].hooks = sorted(c.name for c in _hookimpls_of(plugin_manager(), plugin))
    _generation += 1


def record_problem(plugin_name: str, message: str) -> None:
    """Mark a loaded plugin as broken (e.g. its hook raised); `rag-bench plugins` shows it."""
    info = _load().infos.get(plugin_name)
    if info is not None:
        info.error = message if info.error is None else f"{info.error}; {message}"


def problems() -> list[PluginInfo]:
    """The plugins that failed to load or whose hook raised."""
    return [info for info in _load().infos.values() if info.error]


def describe_problem(info: PluginInfo) -> str:
    """`plugin 'x' (from dist 1.0) failed to load: ...` for messages."""
    dist = f" (from {info.distribution} {info.version})" if info.distribution else ""
    return f"plugin {info.name!r}{dist} {info.error}"


_warned: set[str] = set()


def warn(message: str) -> None:
    """Print a warning once per process."""
    if message not in _warned:
        _warned.add(message)
        print(f"rag-bench: warning: {message}", file=sys.stderr)


def warn_about_broken_plugins() -> None:
    """One warning per broken plugin; the run goes on with the others."""
    for info in problems():
        warn(f"{describe_problem(info)}; the other plugins still work")


def reset_for_tests() -> None:
    """Forget loaded plugins and warnings; the next use loads the entry points again."""
    global _generation
    _load.cache_clear()
    _warned.clear()
    _generation += 1

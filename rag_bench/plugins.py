"""The plugin manager: loads every plugin from the `rag_bench` entry-point group.

Built-in plugins take the same path as third-party ones. A plugin that fails
to import, or whose hook raises, is recorded in `problems()` and left out;
the others keep working.
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


def _one_line(exc: BaseException) -> str:
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
            info.error = f"failed to load: {_one_line(exc)}"
            continue
        info.hooks = sorted(impl.name for impl in _hookimpls_of(pm, module))
    return PluginSet(pm, infos)


def _hookimpls_of(pm: pluggy.PluginManager, plugin: Any) -> list[Any]:
    return [caller for caller in pm.get_hookcallers(plugin) or []]


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded on first use (never at import)."""
    return _load().manager


def plugin_infos() -> list[PluginInfo]:
    return list(_load().infos.values())


def register_plugin(plugin: Any, name: str) -> None:
    """Register an in-process plugin object (used by tests and notebooks)."""
    plugin_manager().register(plugin, name=name)
    _load().infos[name] = PluginInfo(name=name, module=repr(plugin), distribution=None, version=None)
    _load().infos[name].hooks = sorted(c.name for c in _hookimpls_of(plugin_manager(), plugin))
    from .registry import reset_registry

    reset_registry()


def problems() -> list[PluginInfo]:
    return [info for info in _load().infos.values() if info.error]


_warned: set[str] = set()


def warn(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"rag-bench: warning: {message}", file=sys.stderr)


def warn_about_broken_plugins() -> None:
    for info in problems():
        dist = f" (from {info.distribution} {info.version})" if info.distribution else ""
        warn(f"plugin {info.name!r}{dist} {info.error}; the other plugins still work")


def reset_for_tests() -> None:
    _load.cache_clear()
    _warned.clear()
    from .registry import reset_registry

    reset_registry()

"""What a manifest records about the software and machine (MTEB-style revisions in every result)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .plugins import plugin_infos


def now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-01-31T12:00:00+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_revision(path: Path | None = None) -> dict[str, Any] | None:
    """Commit and dirty flag of the git checkout holding rag-bench's source, if it is one."""
    where = path or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": rev, "dirty": bool(dirty)}


def accelerator() -> str:
    """The GPU this process can use, by name, or "cpu"; torch is only asked if a plugin already imported it."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def software() -> dict[str, Any]:
    """What a record says about the software and machine it ran on: versions, platform, accelerator, plugins."""
    return {
        "rag_bench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "accelerator": accelerator(),
        "git": git_revision(),
        "plugins": {
            info.name: {"distribution": info.distribution, "version": info.version, "error": info.error}
            for info in plugin_infos()
        },
    }

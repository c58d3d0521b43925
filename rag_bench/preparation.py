"""Building providers and readers from the registry, and preparing a provider's cached state.

Used by the runner, the commands that prepare without running (`rag-bench
prepare`, write-curve, the latency sitting) and by providers that compose
others (hybrid builds and prepares bm25 and dense through these, so their
state lives in their own cache folders).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .jsonl import fingerprint, write_json_atomic
from .locks import exclusive
from .manifest import now
from .paths import cache_dir
from .provider import EvidenceProvider
from .reader import Reader
from .registry import registry
from .task import Task

#: Written into a provider's workdir after its first `prepare` returns: the build time runs report as `prepare_s`.
PREPARED_MARKER = ".rag_bench_prepared.json"


def build_provider(name: str, raw_params: dict[str, str]) -> EvidenceProvider:
    """The registered provider `name` with its settings parsed from ``-P`` strings (`parse_params`)."""
    return registry().providers.get(name).from_strings(raw_params, f"provider {name}")


def build_reader(name: str, raw_params: dict[str, str]) -> Reader:
    """The registered reader `name` with its settings parsed from ``-R`` strings."""
    return registry().readers.get(name).from_strings(raw_params, f"reader {name}")


def provider_workdir(provider_name: str, provider: EvidenceProvider, task: Task) -> Path:
    """Cache folder for a provider's state, keyed by everything that state depends on."""
    key = fingerprint(
        {
            "provider": provider_name,
            "provider_version": provider.version,
            "settings": provider.state_settings(),
            "task": task.name,
            "task_version": task.version,
            "task_files": task.files_sha256,
        }
    )
    return cache_dir() / "providers" / provider_name / f"{task.name}-v{task.version}-{key}"


def prepare_provider(provider_name: str, provider: EvidenceProvider, task: Task) -> dict[str, Any]:
    """Run `provider.prepare` and return its timing; the first build's time is kept beside the state."""
    if provider.needs_corpus:
        task.require_corpus(f"provider {provider_name}", external_ok=provider.handles_external_corpus)
    workdir = provider_workdir(provider_name, provider, task)
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / PREPARED_MARKER
    start = time.perf_counter()
    with exclusive(workdir / ".lock", f"waiting for another process preparing {provider_name} in {workdir}", wait=True):
        provider.prepare(task, workdir)
    elapsed = time.perf_counter() - start
    if marker.is_file():
        built = json.loads(marker.read_text(encoding="utf-8"))
        return {"prepare_s": elapsed, "build_s": built["build_s"], "reused_cache": True, "workdir": str(workdir)}
    write_json_atomic(marker, {"build_s": elapsed, "built_at": now()})
    return {"prepare_s": elapsed, "build_s": elapsed, "reused_cache": False, "workdir": str(workdir)}

"""Row identity on the board: which settings make a row, and the short label that tells variants apart.

Two rows of one task, split, provider and reader are the same row when
their settings agree: the provider's settings, the reader's scored settings
(not its runtime ones: concurrency, timeouts), the reader depth, the
cut-offs and the question limit. A setting that only one of the two records
(one added by a later provider version) is not compared, and a row published
before reader depth was recorded matches any depth. Rows that differ stand
side by side, each labelled with the settings that differ between them.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from .collect import Entry

#: Nested settings that only restate the top-level ones (a preset resolved to its model id, prefixes ...).
RESOLVED = "resolved"
MISSING = "–"


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def variant_settings(entry: Entry) -> dict[str, str]:
    """The settings that identify a row, flattened to `key -> value text` (provider keys unprefixed)."""
    manifest = entry.manifest
    provider = (manifest.get("provider") or {}).get("settings") or {}
    reader = manifest.get("reader") or {}
    runtime = set(reader.get("runtime_settings") or ())
    scored = {k: v for k, v in (reader.get("settings") or {}).items() if k not in runtime}
    out: dict[str, str] = {}
    _flatten(provider, "", out)
    _flatten(scored, "reader", out)
    # Named as on the command line, so they cannot collide with a provider setting.
    _flatten({"-k": manifest.get("ks"), "--limit": (manifest.get("task") or {}).get("limit")}, "", out)
    if manifest.get("reader_k") is not None:  # absent from rows published before reader depth was recorded
        out["--reader-k"] = str(manifest["reader_k"])
    return out


def _group(entry: Entry) -> tuple[str, str, str, str]:
    return entry.task, entry.split, entry.provider, entry.reader


def same_row(a: Entry, b: Entry) -> bool:
    """Whether `b` replaces `a` on the board (see the module docstring)."""
    if _group(a) != _group(b):
        return False
    sa, sb = variant_settings(a), variant_settings(b)
    return all(sa[key] == sb[key] for key in sa.keys() & sb.keys())


def differences(a: Entry, b: Entry) -> list[str]:
    """`key: old -> new` for each identifying setting (and the provider version) that differs."""
    sa, sb = variant_settings(a), variant_settings(b)
    sa["provider version"] = str((a.manifest.get("provider") or {}).get("version"))
    sb["provider version"] = str((b.manifest.get("provider") or {}).get("version"))
    return [f"{key}: {sa.get(key, MISSING)} -> {sb.get(key, MISSING)}"
            for key in sorted(sa.keys() | sb.keys()) if sa.get(key, MISSING) != sb.get(key, MISSING)]


def _differing_keys(settings: list[dict[str, str]]) -> list[str]:
    keys = sorted({key for s in settings for key in s})
    differ = [key for key in keys if len({s.get(key, MISSING) for s in settings}) > 1]
    plain = [key for key in differ if not key.startswith(f"{RESOLVED}.") and f".{RESOLVED}." not in key]
    return plain or differ


def variant_labels(entries: Iterable[Entry]) -> dict[str, str]:
    """row_id -> a short label (`k1=1.2, b=0.5`, `--reader-k=3`) for rows that share task, split, provider and reader; "" for the rest."""
    groups: dict[tuple[str, str, str, str], list[Entry]] = {}
    for entry in entries:
        groups.setdefault(_group(entry), []).append(entry)
    labels: dict[str, str] = {}
    for members in groups.values():
        if len(members) == 1:
            labels[members[0].row_id] = ""
            continue
        settings = [variant_settings(e) for e in members]
        keys = _differing_keys(settings)
        for entry, mine in zip(members, settings):
            label = ", ".join(f"{key}={mine.get(key, MISSING)}" for key in keys)
            labels[entry.row_id] = label or f"config {entry.config_hash[:8]}"
    return labels

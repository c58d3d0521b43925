"""Rows are ranked only against rows of the same reader: grouping by the reader's fingerprint.

A run records its reader's fingerprint in the manifest (`reader.fingerprint`:
kind, model id or endpoint model, sha256 of the weights where they are at
hand, prompt template hash, decoding settings; `rag_bench.reader.Reader.fingerprint`).
Two rows whose readers differ in any of those answer differently for reasons
that have nothing to do with the evidence, so the board gives each reader its
own table, bold marks and significance tests. Rows published before the
fingerprint was recorded get one derived from their reader settings.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from ..jsonl import fingerprint as short_hash
from ..reader import DECODING_SETTINGS
from .collect import Entry

#: The fingerprint fields that decide a group (others, e.g. what a reader was trained on, are shown, not compared).
IDENTITY = ("kind", "model", "endpoint", "weights_sha256", "prompt_sha256", "decoding")


def recorded_fingerprint(entry: Entry) -> dict[str, Any] | None:
    """The fingerprint the run recorded; None for rows published before it was."""
    found = (entry.manifest.get("reader") or {}).get("fingerprint")
    return found if isinstance(found, dict) else None


def reader_fingerprint(entry: Entry) -> dict[str, Any]:
    """The row's reader fingerprint: as recorded, else derived from its reader name and settings."""
    found = recorded_fingerprint(entry)
    if found is not None:
        return found
    settings = (entry.manifest.get("reader") or {}).get("settings") or {}
    return {"kind": entry.reader, "model": settings.get("model"), "endpoint": settings.get("base_url"), "weights_sha256": None,
            "prompt_sha256": settings.get("prompt_sha256"),
            "decoding": {k: settings[k] for k in DECODING_SETTINGS if k in settings}}


def identity(fp: dict[str, Any]) -> dict[str, Any]:
    return {key: fp.get(key) for key in IDENTITY}


def group_key(entry: Entry) -> str:
    """A short hash of the fields that identify the row's reader."""
    return short_hash(identity(reader_fingerprint(entry)), 10)


def differing_fields(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """`field: old -> new` for each identifying field of two fingerprints that differs."""
    ia, ib = identity(a), identity(b)
    return [f"{k}: {_short(ia[k])} -> {_short(ib[k])}" for k in IDENTITY if ia[k] != ib[k]]


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def label(fp: dict[str, Any]) -> str:
    """A one-line description of a reader: kind, model, weights, prompt and decoding."""
    parts = [str(fp.get("kind"))]
    if fp.get("model"):
        parts.append(str(fp["model"]))
    if fp.get("endpoint"):
        parts.append(f"at {fp['endpoint']}")
    if fp.get("weights_sha256"):
        parts.append(f"weights sha256 {str(fp['weights_sha256'])[:12]}")
    if fp.get("prompt_sha256"):
        parts.append(f"prompt sha256 {str(fp['prompt_sha256'])[:12]}")
    decoding = fp.get("decoding") or {}
    if decoding:
        parts.append(", ".join(f"{k}={v}" for k, v in sorted(decoding.items())))
    return "; ".join(parts)


def reader_groups(entries: Iterable[Entry]) -> list[tuple[str, dict[str, Any], list[Entry]]]:
    """(group key, fingerprint, rows) per distinct reader, rows in their given order; groups by kind, then key."""
    groups: dict[str, tuple[dict[str, Any], list[Entry]]] = {}
    for entry in entries:
        key = group_key(entry)
        groups.setdefault(key, (reader_fingerprint(entry), []))[1].append(entry)
    ordered = sorted(groups.items(), key=lambda item: (str(item[1][0].get("kind")), item[0]))
    return [(key, fp, rows) for key, (fp, rows) in ordered]

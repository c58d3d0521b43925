"""A disk cache of LLM calls, shared by readers and judges.

An entry is keyed by everything that determines the reply: the endpoint URL
(which names the server and the API path), the model, the prompt and every
generation parameter, i.e. the whole request body. Secrets (the API key and
other headers) are never part of a key or of a stored entry. A re-run or a
resumed run therefore makes no call it has made before.

Entries are small JSON files under ``cache_dir()/llm_calls/<2 hex>/<sha256>.json``,
written atomically, so concurrent writers never leave a torn entry; the last
writer of one key wins, which is harmless since equal keys mean equal calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .paths import cache_dir

SUBDIR = "llm_calls"
#: Header on replies served from the disk cache (set by `rag_bench.endpoint.transport.CachingTransport`).
CACHE_HEADER = "x-rag-bench-cache"


def call_key(parts: dict[str, Any]) -> str:
    """The sha256 of `parts` as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CallCache:
    """Get and put JSON values by call key; `root` defaults to the rag-bench cache directory."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / SUBDIR

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        """The stored value, or None when absent or unreadable (a damaged entry is a miss)."""
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(value, fh, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0

"""Where a loaded model came from: the Hugging Face commit, for a provider's or reader's `metadata()`."""

from __future__ import annotations

from typing import Any


def loaded_revision(model: Any) -> str | None:
    """The Hugging Face commit a loaded transformers model came from (None for a local folder or no model)."""
    config = getattr(model, "config", None)
    return getattr(config, "_commit_hash", None) or None

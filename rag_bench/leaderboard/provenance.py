"""What a row says about where its figures come from: provider metadata, reader depth, accelerator.

Shared by the front page (a mark on rows whose provider trained on the
corpus, metadata columns in the full view) and the row pages. Rows published
before provider metadata was recorded say so rather than showing defaults.
"""

from __future__ import annotations

from .collect import Entry
from .markup import esc

NOT_RECORDED = "not recorded"


def trained_on_corpus(entry: Entry) -> bool | None:
    """True / False from the row's metadata; None where the row has none."""
    meta = entry.metadata
    return None if meta is None else bool(meta.get("trained_on_corpus"))


def trained_text(entry: Entry) -> str:
    """`yes (train)`, `no`, or `not recorded`."""
    trained = trained_on_corpus(entry)
    if trained is None:
        return NOT_RECORDED
    splits = ", ".join(entry.metadata.get("trained_splits") or [])
    return f"yes ({splits})" if trained and splits else "yes" if trained else "no"


def base_model_text(entry: Entry) -> str:
    """`id@revision` of the base model; `–` for none."""
    meta = entry.metadata
    if meta is None:
        return NOT_RECORDED
    model, revision = meta.get("base_model"), meta.get("base_revision")
    if not model:
        return "–"
    return f"{model}@{revision[:12]}" if revision else str(model)


def reader_k_text(entry: Entry) -> str:
    return NOT_RECORDED if entry.reader_k is None else str(entry.reader_k)


#: Metadata fields that change what a row's figures mean, shown as marks beside the provider's name (the text before
#: any parenthesis; the whole value on hover). llm_memory sets them; any provider may.
LABELLED = {"key_init": "keys", "z_layout": "z"}


def labels(entry: Entry) -> list[tuple[str, str]]:
    """(short, full) texts of the row's LABELLED metadata, in LABELLED's order."""
    meta = entry.metadata or {}
    return [(f"{name}: {str(meta[key]).split(' (')[0]}", f"{key}: {meta[key]}") for key, name in LABELLED.items()
            if meta.get(key)]


def marks(entry: Entry) -> str:
    """HTML marks after a provider name: trained on the corpus (or metadata missing), and its LABELLED metadata."""
    trained = trained_on_corpus(entry)
    if trained is None:
        return ' <span class="nometa" title="published before provider metadata was recorded">?</span>'
    out = ""
    if trained:
        title = f"trained on this task's corpus: {trained_text(entry)}; {entry.metadata.get('parameters_trained', 0):,} parameters trained"
        out += f' <span class="trained" title="{esc(title)}">trained</span>'
    return out + "".join(f' <span class="trained" title="{esc(full)}">{esc(short)}</span>' for short, full in labels(entry))


def items(entry: Entry) -> list[tuple[str, str]]:
    """(label, plain text) pairs for a row page's metadata list."""
    meta = entry.metadata or {}
    known = ("trained_on_corpus", "trained_splits", "parameters_trained", "base_model", "base_revision")
    out = [
        ("reader depth (evidence texts read)", reader_k_text(entry)),
        ("trained on the task's corpus", trained_text(entry)),
        ("parameters trained", f"{meta['parameters_trained']:,}" if "parameters_trained" in meta else NOT_RECORDED),
        ("base model", base_model_text(entry)),
        ("accelerator", entry.accelerator or NOT_RECORDED),
    ]
    out += [(key, str(value)) for key, value in sorted(meta.items()) if key not in known]
    return out

"""Readers of the HippoRAG data files (SOURCES.md section 8): Wikipedia paragraphs as (title, text) pairs.

HippoRAG's corpora come in two shapes: a JSON list of ``{"title", "text"}``
(2WikiMultihopQA, MuSiQue) and a JSON object title -> list of sentences
(HotpotQA train, whose sentences after the first start with a space, so they
are joined with nothing). Files may be stored gzip'd or as downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag_bench.api import RagBenchError, open_text


def read_json(path: Path, kind: type, what: str) -> Any:
    """A whole JSON file (gzip'd or not) whose top level must be `kind`; `what` names it in errors."""
    try:
        with open_text(path) as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise RagBenchError(f"{path} is not readable JSON ({exc}); is it HippoRAG's {what}? Download it again") from None
    if not isinstance(data, kind):
        raise RagBenchError(f"{path} should hold {what} (a JSON {kind.__name__}), found a JSON {type(data).__name__}")
    return data


def listed_paragraphs(path: Path) -> list[tuple[str, str]]:
    """(title, text) of each entry of a HippoRAG corpus list, in file order, text stripped."""
    rows = read_json(path, list, 'a list of {"title", "text"} paragraphs')
    for position, row in enumerate(rows):
        if not isinstance(row, dict) or not {"title", "text"} <= row.keys():
            raise RagBenchError(f"{path}: entry {position} is not a {{'title', 'text'}} paragraph")
    return [(row["title"], row["text"].strip()) for row in rows]


def sentence_paragraphs(path: Path) -> list[tuple[str, str]]:
    """(title, text) of each entry of a title -> sentences object, in file order, sentences joined as written."""
    entries = read_json(path, dict, "an object mapping titles to lists of sentences")
    out = []
    for title, sentences in entries.items():
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise RagBenchError(f"{path}: entry {title!r} is not a list of sentences")
        out.append((title, "".join(sentences).strip()))
    return out

"""HTML building blocks. Every run-derived string passes through `esc`; nothing else writes text."""

from __future__ import annotations

import html
import importlib.resources
import json
import shlex
from string import Template
from typing import Any, Iterable

from .. import __version__

ASSETS = ("style.css", "leaderboard.js")
TEMPLATE = "page.html"


def esc(value: Any) -> str:
    """HTML-escape text for element content and quoted attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def asset_text(name: str) -> str:
    """A page template or asset shipped in `rag_bench_leaderboard`."""
    return importlib.resources.files("rag_bench_leaderboard").joinpath(name).read_text(encoding="utf-8")


def page(title: str, body: str, root: str, built: str) -> str:
    """A whole page: `body` is already-escaped HTML; `root` the relative path to the site root."""
    return Template(asset_text(TEMPLATE)).substitute(
        title=esc(title), body=body, root=root, version=esc(__version__), built=esc(built)
    )


def command_text(argv: list[str] | None) -> str:
    """The argv as one shell line (quoted so it can be pasted)."""
    return shlex.join(argv) if argv else ""


def cell(content: str, sort: Any = None, cls: str = "", title: str = "") -> str:
    """A <td>; `content` is already escaped, `sort` (raw) becomes data-sort."""
    attrs = ""
    if sort is not None:
        attrs += f' data-sort="{esc(sort)}"'
    if cls:
        attrs += f' class="{esc(cls)}"'
    if title:
        attrs += f' title="{esc(title)}"'
    return f"<td{attrs}>{content}</td>"


def table(headers: Iterable[str], rows: Iterable[str], cls: str = "sortable", tid: str = "") -> str:
    """A table from plain-text headers (escaped here) and pre-rendered <tr> rows."""
    head = "".join(f"<th scope=\"col\">{esc(h)}</th>" for h in headers)
    id_attr = f' id="{esc(tid)}"' if tid else ""
    return (f'<div class="table-wrap"><table class="{esc(cls)}"{id_attr}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def pretty_json(value: Any) -> str:
    return f"<pre>{esc(json.dumps(value, indent=2, sort_keys=True))}</pre>"

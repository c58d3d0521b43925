"""One page per row: the run's manifest, all its aggregates and its per-question records."""

from __future__ import annotations

from typing import Any

from . import provenance
from .collect import Entry
from .columns import fmt, quality_metrics
from .markup import cell, command_text, esc, pretty_json, table

EVIDENCE_SHOWN = 5


def _meta(entry: Entry) -> str:
    m = entry.manifest
    software = m.get("software") or {}
    git = software.get("git") or {}
    provider = m.get("provider") or {}
    reader = m.get("reader") or {}
    task = m.get("task") or {}
    plugin = (software.get("plugins") or {}).get(provider.get("plugin") or "", {})
    items = [
        ("reproduce with", f"<code>{esc(command_text(entry.command))}</code>" if entry.command else "–"),
        ("task", esc(f"{entry.task} v{task.get('version', '?')}, split {entry.split}, {task.get('questions', '?')} questions")),
        ("provider", esc(f"{entry.provider} v{provider.get('version', '?')} from {plugin.get('distribution') or provider.get('plugin')} {plugin.get('version') or ''}")),
        ("provider settings", pretty_json(provider.get("settings", {}))),
        ("reader", esc(entry.reader)),
        ("reader settings", pretty_json(reader.get("settings", {}))),
        *((label, esc(text)) for label, text in provenance.items(entry)),
        ("status", esc(f"{entry.status}; {entry.counts.get('ok', '?')} ok, {entry.counts.get('failed', '?')} failed")),
        ("config hash", f"<code>{esc(entry.config_hash)}</code>"),
        ("finished", esc(entry.date)),
        ("rag-bench", esc(f"{software.get('rag_bench', '?')} (git {git.get('commit', '?')}{', dirty' if git.get('dirty') else ''}), Python {software.get('python', '?')}")),
        ("seed", esc(m.get("seed", "?"))),
    ]
    return '<dl class="meta">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _aggregates(entry: Entry) -> str:
    rows = []
    for name, agg in sorted(entry.aggregate.items()):
        ci = agg.get("ci95")
        rows.append("<tr>" + cell(esc(name), name) + cell(esc(fmt(agg["value"], name)), agg["value"], "num")
                    + cell(esc(f"[{fmt(ci[0], name)}, {fmt(ci[1], name)}]") if ci else "–", ci[0] if ci else "", "num")
                    + cell(esc(agg.get("n", "")), agg.get("n"), "num")
                    + cell(esc(agg.get("unscored", "")), agg.get("unscored", ""), "num") + "</tr>")
    return table(["metric", "value", "95% CI", "n", "unscored"], rows, tid="aggregates")


def _evidence(record: dict[str, Any]) -> str:
    gold = set(record.get("gold_doc_ids") or [])
    hits = record.get("hits") or []
    texts = record.get("evidence") or []
    items = []
    for i, text in enumerate(texts[:EVIDENCE_SHOWN]):
        doc_id = hits[i][0] if i < len(hits) else ""
        cls = ' class="gold"' if doc_id in gold else ""
        items.append(f"<li{cls}><b>{esc(doc_id)}</b> {esc(text)}</li>")
    if not items:
        return "–"
    more = f" (top {EVIDENCE_SHOWN} of {len(texts)} shown)" if len(texts) > EVIDENCE_SHOWN else ""
    return f"<details><summary>{len(texts)} text(s){esc(more)}</summary><ol class=\"evidence\">{''.join(items)}</ol></details>"


def _question_rows(entry: Entry, metrics: list[str]) -> tuple[list[str], list[str]]:
    records = list(entry.records())

    def score_cells(qid: str) -> list[str]:
        return [
            cell(esc(fmt(v, m)), v, "num") if (v := entry.scores.get(m, {}).get(qid)) is not None else cell("–", "", "num")
            for m in metrics
        ]

    if records:
        headers = ["qid", "question", "gold answers", "gold passages", "answer", "evidence", "status", *metrics]
        rows = [
            "<tr>" + "".join([
                cell(esc(r["qid"]), r["qid"]),
                cell(esc(r.get("question")), r.get("question"), "text"),
                cell(esc(" | ".join(r.get("answers") or [])), cls="text"),
                cell(esc(", ".join(r.get("gold_doc_ids") or []))),
                cell(esc(r.get("answer")) if r.get("answer") is not None else "–", r.get("answer") or "", "text"),
                cell(_evidence(r)),
                cell(esc(r.get("status")) + (f" ({esc(r.get('reader_error'))})" if r.get("reader_error") else ""), r.get("status")),
                *score_cells(r["qid"]),
            ]) + "</tr>"
            for r in records
        ]
        return headers, rows
    qids = sorted({qid for values in entry.scores.values() for qid in values})
    rows = ["<tr>" + cell(esc(qid), qid) + "".join(score_cells(qid)) + "</tr>" for qid in qids]
    return ["qid", *metrics], rows


def run_body(entry: Entry) -> str:
    """The body of a row's page."""
    metrics = quality_metrics([entry])
    headers, rows = _question_rows(entry, metrics)
    note = ""
    if entry.records_path is None:
        note = ('<p class="note">This row comes from published aggregated results: per-question scores are shown by '
                "question id; the records (question, gold, evidence, answer) carry dataset text and are not published. "
                "Run the command above and build the site from its runs directory to see them.</p>")
    return (
        f"<h1>{esc(entry.provider)} on {esc(entry.task)}/{esc(entry.split)}, reader {esc(entry.reader)}</h1>"
        f"{_meta(entry)}<h2>Aggregates</h2>{_aggregates(entry)}"
        f"<h2>Per-question records ({len(rows)})</h2>{note}{table(headers, rows, tid='questions')}"
    )

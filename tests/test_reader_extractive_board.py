"""Rows of different readers on the board: grouped by reader fingerprint, never ranked together; verify compares it."""

from __future__ import annotations

import copy
import re
from pathlib import Path

from rag_bench.leaderboard.collect import collect_entries
from rag_bench.leaderboard.readers import reader_fingerprint, reader_groups
from rag_bench.leaderboard.site import build_site
from rag_bench.leaderboard.verify import compare
from rag_bench.scoring.answer import answer_match

PUBLISHED = Path(__file__).resolve().parents[1] / "leaderboard" / "results"
FP = {"kind": "extractive", "model": "sentence-transformers/all-MiniLM-L6-v2", "endpoint": None, "weights_sha256": "a" * 64,
      "prompt_sha256": None, "decoding": {"max_answer_tokens": 10}}


def row(base, provider: str, fingerprint: dict | None, em: float):
    """A copy of a published row as another provider, read by the reader of `fingerprint` (None: not recorded)."""
    entry = copy.deepcopy(base)
    entry.provider, entry.config_hash = provider, f"{provider}-{em}"
    entry.reader = fingerprint["kind"] if fingerprint else "none"
    reader = entry.manifest.setdefault("reader", {})
    reader.pop("fingerprint", None)
    if fingerprint:
        reader["fingerprint"] = fingerprint
    entry.aggregate["em"] = {"value": em, "ci95": [em - 0.01, em + 0.01], "n": 40}
    entry.scores["em"] = {qid: em for qid in list(entry.scores.get("recall@5", {}))}
    return entry


def test_rows_of_different_readers_get_tables_of_their_own(tmp_path):
    base = next(e for e in collect_entries(PUBLISHED) if e.task == "nq_5k")
    other = dict(FP, weights_sha256="b" * 64)
    entries = [row(base, "bm25", FP, 0.3), row(base, "dense", FP, 0.2), row(base, "hybrid", other, 0.9),
               row(base, "no_retrieval", None, 0.0)]
    groups = reader_groups(entries)
    assert [[e.provider for e in rows] for _, _, rows in groups] in (
        [["bm25", "dense"], ["hybrid"], ["no_retrieval"]], [["hybrid"], ["bm25", "dense"], ["no_retrieval"]])
    assert reader_fingerprint(entries[3])["kind"] == "none"  # derived for rows that did not record one

    index = (build_site(entries, tmp_path / "site", plots=False).index).read_text(encoding="utf-8")
    sections = re.findall(r'<section class="task" data-task="nq_5k" id="task-([^"]+)">(.*?)</section>', index, re.S)
    assert len(sections) == 3 and len({slug for slug, _ in sections}) == 3
    by_rows = {tuple(sorted(set(re.findall(r'<tr data-row="nq_5k__(.+?)__test__', body)))): body for _, body in sections}
    assert set(by_rows) == {("bm25", "dense"), ("hybrid",), ("no_retrieval",)}
    # The hybrid row's 0.9 is the best of its own table only: the other reader's table bolds bm25's 0.3.
    assert "weights sha256 bbbbbbbbbbbb" in by_rows[("hybrid",)] and "3 readers" in by_rows[("hybrid",)]
    assert re.search(r'class="num best"[^>]*><span class="v">0\.300', by_rows[("bm25", "dense")])
    assert index.count('<option value="nq_5k">') == 1


def test_verify_fails_when_the_reader_fingerprint_changed():
    base = next(e for e in collect_entries(PUBLISHED) if e.task == "nq_5k")
    published, rerun = row(base, "bm25", FP, 0.3), row(base, "bm25", FP, 0.3)
    assert compare(published, rerun, 0.01, 0.1).ok
    rerun.manifest["reader"]["fingerprint"] = dict(FP, weights_sha256="c" * 64)
    check = compare(published, rerun, 0.01, 0.1)
    assert not check.ok and "reader fingerprint differs (weights_sha256: aaaaaaaaaaaa -> cccccccccccc)" in check.detail
    # A row published before fingerprints were recorded is compared on its figures alone.
    legacy = row(base, "bm25", None, 0.3)
    legacy.reader = rerun.reader = "extractive"
    assert "fingerprint" not in compare(legacy, rerun, 0.01, 0.1).detail


def test_match_is_a_gold_answer_inside_the_normalised_prediction():
    assert answer_match("It was written by William Shakespeare.", ["Shakespeare"]) == 1.0
    assert answer_match("The Beatles", ["beatles"]) == 1.0  # articles and case are normalised away
    assert answer_match("in 1969, on July 20", ["July 20, 1969"]) == 0.0  # the whole gold sequence, in order
    assert answer_match("Shakespeares", ["Shakespeare"]) == 0.0  # whole tokens only
    assert answer_match("Paris", ["Paris, France", "paris"]) == 1.0  # any gold answer
    assert answer_match("", ["x"]) == 0.0 and answer_match("anything", [""]) == 0.0

"""Equal-bytes baselines: `-P evidence_bytes=B` on bm25 and dense hands over (and stores) only the first B bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.runner import build_provider
from rag_bench.text import evidence_store, utf8_prefix, utf8_size

from .helpers import run_quietly, write_slice_card

B = 64


def nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def test_a_text_that_fits_is_unchanged():
    assert utf8_prefix("short text", 10) == "short text"
    assert utf8_prefix("café", 5) == "café"  # 5 bytes


def test_the_cut_ends_at_the_last_word_boundary_within_the_bytes():
    text = "The quick brown fox jumps"
    assert utf8_prefix(text, 12) == "The quick"  # byte 12 falls inside "brown"
    assert utf8_prefix(text, 15) == "The quick brown"  # the cut falls just before a space: the word is whole
    assert utf8_prefix(text, 16) == "The quick brown"  # trailing space dropped
    assert utf8_prefix("Title\nbody text", 8) == "Title"  # a newline is a word boundary too


def test_the_cut_never_splits_a_utf8_character():
    # "é" is 2 bytes, "€" 3, "😀" 4: a cut inside any of them drops the character whole.
    for word, char in (("caf", "é"), ("price", "€"), ("smile", "😀")):
        whole = word + char * 3
        for limit in range(1, nbytes(whole)):
            cut = utf8_prefix(whole, limit)
            assert nbytes(cut) <= limit and whole.startswith(cut)
            cut.encode("utf-8").decode("utf-8")  # valid UTF-8
            assert nbytes(whole[: len(cut) + 1]) > limit  # and the longest such prefix (one word, no boundary)


def test_multibyte_text_is_cut_at_a_word_boundary_when_there_is_one():
    text = "Zürich ist größer als Genf"
    assert utf8_prefix(text, 12) == "Zürich ist"  # byte 12 splits "größer"'s "ö"
    assert utf8_prefix("日本 の首都", 8) == "日本"  # 3-byte characters; byte 8 inside "首"


def test_every_cut_fits_its_bytes():
    text = "Ünïcödé wörds, 😀 emoji and plain words mixed\nover two lines with   spaces "
    for limit in range(1, nbytes(text) + 3):
        cut = utf8_prefix(text, limit)
        assert nbytes(cut) <= limit and text.startswith(cut) and (cut == text or cut == cut.rstrip())


def test_the_bytes_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        utf8_prefix("text", 0)



def test_the_store_is_whole_without_a_limit_and_cut_with_one():
    assert evidence_store(["a b", "c"], None) == ["a b", "c"]
    assert evidence_store(["aa bb", "é", "ééé"], 3) == ["aa", "é", "é"]
    assert utf8_size(["aa", "é"]) == 4


@pytest.mark.parametrize("provider", ["bm25", "dense"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_evidence_bytes_must_be_positive(provider, value):
    with pytest.raises(RagBenchError, match="evidence_bytes must be a positive number of bytes"):
        build_provider(provider, {"evidence_bytes": value, **({"model": "minilm"} if provider == "dense" else {})})


@pytest.fixture(scope="module")
def card(nq_5k, tmp_path_factory):
    return write_slice_card(tmp_path_factory.mktemp("task") / "nq_mini_bytes", nq_5k, "nq_mini_bytes", train=0, test=16)


def records(result) -> list[dict]:
    return [json.loads(line) for line in (result.path / "records.jsonl").read_text(encoding="utf-8").splitlines()]


def ids(record: dict) -> list[str]:
    return [doc_id for doc_id, _ in record["hits"]]


def cut_store_bytes(card: str, limit: int) -> int:
    """The bytes of the card's passages (title, newline, text) each cut to `limit`."""
    rows = [json.loads(line) for line in (Path(card).parent / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    return sum(nbytes(utf8_prefix(f"{r['title']}\n{r['text']}" if r["title"] else r["text"], limit)) for r in rows)


@pytest.mark.parametrize("provider,settings", [("bm25", {}), ("dense", {"model": "minilm"})])
def test_a_run_hands_over_and_stores_only_the_first_bytes(card, tmp_path, provider, settings):
    whole = run_quietly(tmp_path / "whole", provider, task=card, provider_params=dict(settings))
    cut = run_quietly(tmp_path / "cut", provider, task=card, provider_params={**settings, "evidence_bytes": str(B)})
    texts = [text for r in records(cut) for text in r["evidence"]]
    assert texts and all(nbytes(t) <= B for t in texts)
    full = {hit: text for r in records(whole) for hit, text in zip(ids(r), r["evidence"])}
    for r in records(cut):
        for hit, text in zip(ids(r), r["evidence"]):
            assert full[hit].startswith(text) and text == utf8_prefix(full[hit], B)
    # Routing reads the whole passage: the same hits in the same order.
    assert [ids(r) for r in records(cut)] == [ids(r) for r in records(whole)]
    # The footprint counts the cut store (the index beside it); the whole text is a metadata figure.
    parts, meta = cut.manifest["footprint_bytes"], cut.manifest["provider"]["metadata"]
    assert parts["index"] == whole.manifest["footprint_bytes"]["index"]
    assert parts["text_store"] == cut_store_bytes(card, B) < whole.manifest["footprint_bytes"]["text_store"]
    assert meta["evidence_bytes"] == B and meta["whole_text_bytes"] == whole.manifest["footprint_bytes"]["text_store"]
    assert cut.metrics["aggregate"]["footprint_mb_per_1k"]["value"] < whole.metrics["aggregate"]["footprint_mb_per_1k"]["value"]


def test_the_report_places_every_row_by_bytes_per_passage(card, tmp_path):
    from click.testing import CliRunner

    from rag_bench.cli import cli

    for cut in (None, 32, B):
        run_quietly(tmp_path, "bm25", task=card, provider_params={"evidence_bytes": str(cut)} if cut else {})
    run_quietly(tmp_path, "no_retrieval", task=card)
    out = tmp_path / "docs" / "RESULTS.md"
    result = CliRunner().invoke(cli, ["report", "--runs-dir", str(tmp_path / "runs"), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    section = out.read_text().split("## Quality against bytes per passage", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| bm25")]
    # Cheapest first: the 32-byte store, the 64-byte one, the whole passages; each with its index and text store.
    assert [row.split(" | ")[0] for row in rows] == ["| bm25 32 B", "| bm25 64 B", "| bm25 whole"]
    assert all("index " in row and "text_store " in row for row in rows)
    assert "Not on the plot (no storage to place on a log axis): no_retrieval." in section
    plot = tmp_path / "docs" / "results" / "equal-bytes-nq_mini_bytes.png"
    assert plot.read_bytes().startswith(b"\x89PNG") and "](results/equal-bytes-nq_mini_bytes.png)" in section


def test_cut_rows_are_not_whole_passage_baselines_and_are_labelled_by_their_bytes():
    from types import SimpleNamespace

    from rag_bench.study.report.render import _baselines, _label

    def row(provider, cut, digest):
        settings = {"model": "minilm", **({"evidence_bytes": cut} if cut != "absent" else {})}
        return SimpleNamespace(provider=provider, task="nq_5k", reader="none", config_hash=digest,
                               manifest={"provider": {"settings": settings}})

    whole, cut, old = row("dense", None, "aaaaaaaa"), row("dense", 64, "bbbbbbbb"), row("bm25", "absent", "cccccccc")
    assert _baselines([whole, cut, old, row("llm_memory", "absent", "d")]) == [whole, old]
    assert _label(cut, [whole, cut]) == "dense (evidence_bytes=64) bbbbbb" and _label(whole, [whole, cut]) == "dense aaaaaa"


def test_the_memory_is_compared_with_each_equal_bytes_row_question_by_question():
    from types import SimpleNamespace

    from rag_bench.study.report.equal_bytes import _against_cut

    def row(provider, cut, rouge):
        settings = {} if cut == "absent" else {"evidence_bytes": cut}
        scores = {"evidence_rougeL": {f"q{i}": rouge + 0.01 * (i % 3) for i in range(30)},
                  "answer_recall@5": {f"q{i}": float(i % 2) for i in range(30)}}
        return SimpleNamespace(provider=provider, row_id=f"{provider}-{cut}", scores=scores,
                               manifest={"provider": {"settings": settings}})

    memory, small, large = row("llm_memory", "absent", 0.4), row("dense", 64, 0.3), row("dense", 256, 0.5)
    rows = [memory, large, small, row("dense", None, 0.6)]
    labels = {r.row_id: r.row_id for r in rows}
    text = _against_cut(memory, rows, labels)
    assert text.index("dense-64: evidence_rougeL +0.100") < text.index("dense-256: evidence_rougeL -0.100")
    assert "dense-None" not in text and "answer_recall@5 +0.000" in text
    assert _against_cut(memory, [memory, rows[-1]], labels) == ""

"""Finding source files: data directory first, then the download cache, then the original URL."""

import gzip
from dataclasses import replace

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.registry import registry
from rag_bench.sources import download_path, locate

from .helpers import serving


@pytest.fixture()
def flashrag_spec():
    card = registry().tasks.get("nq_5k").card
    return next(s for s in card.sources if s.name == "flashrag_sample")


@pytest.fixture()
def origin(tmp_path, shared_data, flashrag_spec):
    """A loopback HTTP server publishing the source as its origin does: uncompressed."""
    root = tmp_path / "origin"
    root.mkdir()
    (root / "sample_data.jsonl").write_bytes(gzip.decompress((shared_data / flashrag_spec.path).read_bytes()))
    (root / "tampered.jsonl").write_bytes(b'{"id": "0", "contents": "not the original"}\n')
    with serving(root) as url:
        yield url


def test_found_in_the_data_directory(shared_data, flashrag_spec, fresh_cache):
    assert locate(flashrag_spec) == shared_data / flashrag_spec.path


def test_downloaded_from_the_origin_and_verified(flashrag_spec, origin, fresh_cache, monkeypatch):
    monkeypatch.delenv("RAG_BENCH_DATA_DIR")
    spec = replace(flashrag_spec, url=f"{origin}/sample_data.jsonl")
    path = locate(spec)
    assert path == download_path(spec) and path.is_relative_to(fresh_cache)
    # a second lookup uses the cached download, even with the origin gone
    assert locate(replace(spec, url="http://127.0.0.1:9/gone")) == path


def test_a_tampered_download_is_refused(flashrag_spec, origin, fresh_cache, monkeypatch):
    monkeypatch.delenv("RAG_BENCH_DATA_DIR")
    spec = replace(flashrag_spec, url=f"{origin}/tampered.jsonl")
    with pytest.raises(RagBenchError, match="does not match"):
        locate(spec)
    assert not download_path(spec).exists()


def test_every_place_looked_is_named_when_nothing_fits(flashrag_spec, fresh_cache, tmp_path, monkeypatch):
    wrong = tmp_path / "data"
    (wrong / "raw" / "flashrag_quickstart").mkdir(parents=True)
    (wrong / flashrag_spec.path).write_bytes(b"something else")
    monkeypatch.setenv("RAG_BENCH_DATA_DIR", str(wrong))
    spec = replace(flashrag_spec, url="http://127.0.0.1:9/unreachable.jsonl")
    with pytest.raises(RagBenchError) as info:
        locate(spec)
    message = str(info.value)
    assert "sha256 differs" in message and "download failed" in message
    assert "RAG_BENCH_DATA_DIR" in message

"""Find a task's raw source files: the data directory, the download cache, or the original URL.

Every candidate is verified by sha256 before use. When nothing fits, the
error lists every place looked at and what to set.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .errors import RagBenchError
from .jsonl import sha256_content, sha256_file, sha256_text
from .paths import DATA_DIR_ENV, cache_dir, data_dir
from .task import SourceSpec

DOWNLOAD_TIMEOUT_S = 60


def md5_file(path: Path) -> str:
    """MD5 of a file (the checksum some publishers give, e.g. pyserini's prebuilt indexes), read in 1 MiB blocks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_kind(spec: SourceSpec) -> str:
    """Which checksum the card gives for `spec`, for error messages."""
    return "md5" if spec.md5 and not spec.sha256 else "sha256"


def expected_checksum(spec: SourceSpec) -> str:
    """The card's checksum for `spec` (a sha256 shortened), for error messages."""
    if spec.sha256:
        return f"{spec.sha256[:12]}…"
    return spec.md5 or spec.content_sha256 or "?"


def matches(spec: SourceSpec, path: Path) -> bool:
    """True when `path` is the file `spec` names: as stored locally, or as originally published.

    A card's `md5` (the publisher's checksum) must match as well when given.
    """
    if spec.md5 is not None and md5_file(path) != spec.md5.lower():
        return False
    if spec.sha256 is None and spec.content_sha256 is None:
        return True  # unpinned (checksum unknown to the card): its sha256 is recorded in the prepared task
    digest = sha256_file(path)
    if digest in (spec.sha256, spec.content_sha256):
        return True
    return spec.content_sha256 is not None and sha256_content(path) == spec.content_sha256


def download_path(spec: SourceSpec) -> Path:
    key = spec.sha256 or sha256_text(spec.url or spec.path)
    return cache_dir() / "sources" / key[:16] / Path(spec.path).name


def available_locally(spec: SourceSpec) -> bool:
    """True when a copy of `spec` lies in the data directory or the download cache (not verified)."""
    root = data_dir()
    return (root is not None and (root / spec.path).is_file()) or download_path(spec).is_file()


def locate(spec: SourceSpec, *, allow_download: bool = True) -> Path:
    """Return a verified local path for `spec`, downloading it if needed."""
    looked: list[str] = []
    root = data_dir()
    if Path(spec.path).is_absolute():
        candidates = [Path(spec.path)]
    elif root is not None:
        candidates = [root / spec.path]
    else:
        candidates = []
        looked.append(f"${DATA_DIR_ENV}: not set")
    for candidate in candidates:
        if not candidate.is_file():
            looked.append(f"{candidate}: not found")
        elif matches(spec, candidate):
            return candidate
        else:
            looked.append(f"{candidate}: present but its {checksum_kind(spec)} differs from the card's {expected_checksum(spec)}")
    cached = download_path(spec)
    if cached.is_file():
        if matches(spec, cached):
            return cached
        looked.append(f"{cached}: present but its {checksum_kind(spec)} differs from the card's {expected_checksum(spec)}; deleted")
        cached.unlink()
    if allow_download and spec.url:
        try:
            fetch(spec.url, cached)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            looked.append(f"{spec.url}: download failed ({exc})")
        else:
            if matches(spec, cached):
                return cached
            cached.unlink()
            looked.append(f"{spec.url}: downloaded, but its {checksum_kind(spec)} does not match the card's {expected_checksum(spec)}; deleted")
    advice = spec.help or (
        f"Set {DATA_DIR_ENV} to a folder that holds {spec.path}"
        + (f", or allow network access to {spec.url}." if spec.url else ".")
    )
    places = "\n  ".join(looked)
    raise RagBenchError(f"source {spec.name!r} ({Path(spec.path).name}) not found. Looked at:\n  {places}\n{advice}")


def fetch(url: str, dest: Path) -> None:
    """Download `url` to `dest` with a progress bar, through a temporary file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "rag-bench"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}", leave=False) as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))
    os.replace(partial, dest)


def locate_all(specs: tuple[SourceSpec, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for spec in specs:
        try:
            found[spec.name] = locate(spec)
        except RagBenchError:
            if not spec.optional:
                raise
    return found

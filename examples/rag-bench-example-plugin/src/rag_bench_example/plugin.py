"""The module named by the entry point: it implements rag-bench hooks."""

from rag_bench.api import hookimpl

from .provider import IdfOverlapProvider


@hookimpl
def register_providers(register):
    """Make `--provider idf_overlap` available."""
    register("idf_overlap", IdfOverlapProvider)

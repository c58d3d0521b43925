"""The `extractive` reader (a span-extraction model trained on the task) and the `oracle` provider (gold passages)."""

from rag_bench.api import hookimpl

from .oracle import OracleProvider
from .reader import ExtractiveReader


@hookimpl
def register_readers(register):
    register("extractive", ExtractiveReader)


@hookimpl
def register_providers(register):
    register("oracle", OracleProvider)

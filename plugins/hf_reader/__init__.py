"""The `hf` reader plugin: a local transformers chat model reading with the shared prompt."""

from rag_bench.api import hookimpl

from .reader import HFReader


@hookimpl
def register_readers(register):
    register("hf", HFReader)

"""The `openai` reader plugin: one reader for every provider, over any OpenAI-compatible endpoint."""

from rag_bench.api import hookimpl

from .reader import OpenAIReader


@hookimpl
def register_readers(register):
    register("openai", OpenAIReader)

"""The `llm_memory` provider: an LLM that holds one learned memory z_i per passage, routes a query to its z_i
inside the model and generates evidence text; plus its metrics and the `rag-bench memory` commands.

Modules: config (settings), base_source (where θ is loaded from), tokenizer and base (θ), model (Z, projection,
routing), key_index (top-k over the routing keys: exact, or FAISS HNSW at scale), content_init (z_i from
content), data (training examples, BM25 hard negatives), train (accelerate loop), checkpoint (safetensors),
system (a trained memory as one object), generation (routing + evidence), write (`memory add`), evaluation
(`memory eval-add`), adapt_curve (`memory adapt-curve`),
provider, metrics, cli. See docs/LLM_MEMORY.md. Like every plugin, it imports rag-bench only through
`rag_bench.api`.
"""

from rag_bench.api import hookimpl


@hookimpl
def register_providers(register):
    from .provider import LLMMemoryProvider

    register("llm_memory", LLMMemoryProvider)


@hookimpl
def register_metrics(register):
    from .metrics import LLMMemoryMetric

    register("llm_memory", LLMMemoryMetric())


@hookimpl
def register_commands(cli):
    from .cli import memory

    cli.add_command(memory)

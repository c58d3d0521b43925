"""rag-bench's built-in plugins, each registered through the `rag_bench` entry-point group."""

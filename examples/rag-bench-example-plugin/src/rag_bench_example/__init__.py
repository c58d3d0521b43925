"""rag-bench-example-plugin: an example evidence provider distribution (see docs/PLUGINS.md)."""

__version__ = "0.1.0"

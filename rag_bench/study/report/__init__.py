"""`rag-bench report`: docs/RESULTS.md from runs, sweeps, write-path curves and the multi-hop analysis."""

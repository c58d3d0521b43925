"""Analyses across finished runs and published results (``rag-bench analyze ...``).

- ``multihop`` (`multihop.multihop_table`, rendered by `multihop_render`): on a
  task with typed multi-hop questions (hotpotqa_5k), hit@k against all_gold@k
  per provider and question type, and where the hops are lost.

See docs/ANALYSIS.md. The package imports nothing heavy, so that the CLI
stays quick to start.
"""

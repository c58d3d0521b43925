"""`rag-bench write-curve`: one write-and-forget protocol for every provider that can take new documents.

1. Hold out W passages of the task (`heldout.select_held_out`): gold passages
   of dev questions that no train or test question names, chosen in a seeded
   hash order, with the dev questions they answer ("new" questions); the other
   dev questions are the "old" ones. The test split is never touched.
2. Prepare the provider on a view of the task without them
   (`heldout.task_without`: a derived task named ``<task>-minus-<hash>``, so
   its cached state never mixes with the full task's).
3. Write them in with the provider's optional ``write(passages, steps)`` hook
   (`rag_bench.provider.EvidenceProvider.write`) and score, on the new and the
   old questions, routing recall@1/@5, evidence ROUGE-L (top-1) and
   answer_recall@5 (`protocol`), beside the same provider prepared on the full
   task (the reference) and before the write (retention = after / before).
   For a provider whose write optimises (``write_takes_steps``), one point per
   step count: the write curve.
4. With ``--batches B``, write the W passages in B sequential batches and,
   after each, score every batch written so far and the original passages:
   the forgetting curve (DSI++ style).

The result is one JSON per (task, provider); `rag_bench.study.report.write_curve`
draws it into docs/RESULTS.md.
"""

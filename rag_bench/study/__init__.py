"""The study layer: what is written about finished runs, not how they run.

`report` renders docs/RESULTS.md (the research write-up: verdicts, controls, sweeps, curves, the corpus-size axis)
and `analysis` the multi-hop analysis. Both read run folders and published results; nothing in the core imports
them, and the leaderboard imports only the corpus-axis figure from `report`.
"""

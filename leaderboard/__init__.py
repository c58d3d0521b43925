"""Page template and assets of the static leaderboard; installed as `rag_bench_leaderboard`."""

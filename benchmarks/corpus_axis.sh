#!/usr/bin/env bash
# The runs that make the corpus-size axis (issue 29; docs/RESULTS.md "Corpus-size axis",
# rag_bench/study/report/corpus_axis.py): every provider on every member of the NQ corpus family
# (docs/TASKS_NQ_FAMILY.md), then their publication and the regenerated report and board.
#
#   bash benchmarks/corpus_axis.sh              # run everything (hours on 2 CPU cores: llm_memory trains 5 times)
#   DRY_RUN=1 bash benchmarks/corpus_axis.sh    # only print the commands, one per line
#   RUNS=/somewhere bash benchmarks/corpus_axis.sh
#
# Settings, chosen so that the rows join the published nq_5k rows (leaderboard/results/nq_5k) as one line each:
# - reader `none` everywhere: the axis scores the evidence, and `rag-bench run` would otherwise pick
#   openai:gpt-4o-mini whenever OPENAI_API_KEY is set;
# - dense and hybrid with the offline encoder `-P model=minilm` and hybrid without its cross-encoder
#   (`-P reranker=none`), as the published nq_5k rows (the defaults need models this machine cannot download);
# - no_retrieval, bm25, dense and hybrid are already published on nq_5k with these settings, so they run on the
#   other four sizes only;
# - llm_memory at one stated, reduced training budget at EVERY size, nq_5k included (its published nq_5k rows
#   trained 1,500 steps): -P max_train_steps=500 -P closed_book_control=false (the closed-book control's
#   second training is left out). The report states each point's budget from the row's settings.
# Re-running resumes: a finished run is not recomputed.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-runs/corpus-axis}"
MAX_TRAIN_STEPS=500
SIZES=(nq_1k nq_2k5 nq_10k nq_17k)          # nq_5k's baseline rows are published already
FAMILY=(nq_1k nq_2k5 nq_5k nq_10k nq_17k)
BASELINES=(no_retrieval bm25 dense hybrid)

run() {
    echo "$*"
    if [ "${DRY_RUN:-0}" != 1 ]; then "$@"; fi
}

settings() {  # the provider's -P settings (see the header)
    case "$1" in
        dense) echo "-P model=minilm" ;;
        hybrid) echo "-P model=minilm -P reranker=none" ;;
        *) echo "" ;;
    esac
}

# 1. the retrieval baselines (and the no-evidence floor) at every size but nq_5k
for T in "${SIZES[@]}"; do
    for P in "${BASELINES[@]}"; do
        # shellcheck disable=SC2046  # the settings are words on purpose
        run rag-bench run --provider "$P" --task "$T" $(settings "$P") --reader none --runs-dir "$RUNS"
    done
done

# 2. llm_memory at every size, nq_5k included, at the stated reduced budget
for T in "${FAMILY[@]}"; do
    run rag-bench run --provider llm_memory --task "$T" -P max_train_steps="$MAX_TRAIN_STEPS" \
        -P closed_book_control=false --reader none --runs-dir "$RUNS"
done

# 3. publish the finished runs (aggregates and per-question scores only) into leaderboard/results/<task>/
for T in "${FAMILY[@]}"; do
    for P in "${BASELINES[@]}" llm_memory; do
        if [ "$T" = nq_5k ] && [ "$P" != llm_memory ]; then continue; fi
        run rag-bench leaderboard publish --from-runs "$RUNS" --provider "$P" --task "$T"
    done
done

# 4. the report (docs/RESULTS.md, its "Corpus-size axis" section) and the static board from the published rows
run rag-bench report leaderboard/results --runs-dir leaderboard/results --out docs/RESULTS.md
run rag-bench leaderboard build leaderboard/results --out site

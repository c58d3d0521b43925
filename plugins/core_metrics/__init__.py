"""The standard metrics: answer (em, f1), retrieval, evidence ROUGE-L and efficiency.

Names are unambiguous: `recall@k` is retrieval recall over gold passage ids,
never token recall; `answer_recall@k` is DPR's top-k accuracy (a gold answer
occurs in the top-k evidence text).

Evidence metrics need a text for every rank they look at. A provider may
give texts for fewer ranks than it ranks (``provide(..., evidence_k=N)``,
e.g. a generator that writes evidence only for the ranks the reader reads):
a metric that would need a text past those is left out for that question,
not counted as zero.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rag_bench.api import (
    Aggregate, Metric, Question, RunContext, all_gold_at, answer_match, exact_match, f1_score, has_answer, hit_at,
    hookimpl, mrr_at, ndcg_at, recall_at, rouge_l, statistic_with_ci,
)

NDCG_DEPTH = 10
ROUGE_MAX_DEPTH = 5


class AnswerMetric(Metric):
    """`em`, `f1` and `match` of the reader's answer (SQuAD normalisation, max over gold answers).

    `match` (BERGEN's lenient metric): a gold answer occurs in the normalised answer.
    """

    description = "em, f1, match of the reader's answer"

    def score_one(self, record: dict[str, Any], question: Question, ctx: RunContext) -> dict[str, float]:
        if record.get("answer") is None or not question.answers:
            return {}
        answer = record["answer"]
        return {"em": exact_match(answer, question.answers), "f1": f1_score(answer, question.answers),
                "match": answer_match(answer, question.answers)}


class RetrievalMetric(Metric):
    """recall@k, hit@k, answer_recall@k, mrr@K and ndcg@10 over the provider's ranked hits.

    Questions with more than one gold passage (multi-hop) also get `all_gold@k`:
    1 when every gold passage is in the top k.
    """

    description = "recall@k, hit@k, all_gold@k, answer_recall@k, mrr@k, ndcg@10"

    def score_one(self, record: dict[str, Any], question: Question, ctx: RunContext) -> dict[str, float]:
        ranked = [doc_id for doc_id, _ in record["hits"]]
        out: dict[str, float] = {}
        gold = set(question.gold_doc_ids)
        if gold:
            for k in ctx.ks:
                out[f"recall@{k}"] = recall_at(ranked, gold, k)
                out[f"hit@{k}"] = hit_at(ranked, gold, k)
                if len(gold) > 1:
                    out[f"all_gold@{k}"] = all_gold_at(ranked, gold, k)
            out[f"mrr@{ctx.ks[-1]}"] = mrr_at(ranked, gold, ctx.ks[-1])
            out[f"ndcg@{NDCG_DEPTH}"] = ndcg_at(ranked, gold, NDCG_DEPTH)
        if question.answers:
            evidence = record["evidence"]
            first = next((i for i, text in enumerate(evidence) if has_answer(text, question.answers)), None)
            for k in ctx.ks:
                if has_texts_for(record, k):
                    out[f"answer_recall@{k}"] = float(first is not None and first < k)
        return out


class EvidenceMetric(Metric):
    """ROUGE-L F1 of the evidence against the gold evidence sentences.

    `evidence_rougeL` scores the top-ranked evidence text; `evidence_rougeL_max@5`
    the best of the first five (left out where fewer than min(5, hits) texts were given).
    """

    description = "evidence_rougeL (top-1), evidence_rougeL_max@5"

    def score_one(self, record: dict[str, Any], question: Question, ctx: RunContext) -> dict[str, float]:
        if not question.gold_evidence:
            return {}
        reference = " ".join(question.gold_evidence)
        scores = [rouge_l(text, reference) for text in record["evidence"][:ROUGE_MAX_DEPTH]]
        out = {}
        if has_texts_for(record, 1):
            out["evidence_rougeL"] = scores[0] if scores else 0.0
        if has_texts_for(record, ROUGE_MAX_DEPTH):
            out[f"evidence_rougeL_max@{ROUGE_MAX_DEPTH}"] = max(scores, default=0.0)
        return out


def has_texts_for(record: dict[str, Any], k: int) -> bool:
    """Whether the record carries an evidence text for each of its top min(k, hits) ranks."""
    return len(record["evidence"]) >= min(k, len(record["hits"]))


def _percentile(q: float):
    return lambda rows: np.percentile(rows, q, axis=1)


class EfficiencyMetric(Metric):
    """Latency per question (p50/p95 ms), preparation time, footprint per 1K passages, peak RSS."""

    description = "latency_p50/p95_ms, prepare_s, footprint_mb_per_1k, peak_rss_mb"

    def run_level(self, records: Sequence[dict[str, Any]], ctx: RunContext) -> dict[str, Aggregate]:
        out: dict[str, Aggregate] = {}
        stages = sorted({key for r in records for key in r.get("timings_ms", {})})
        for stage in stages:
            values = [r["timings_ms"][stage] for r in records if stage in r.get("timings_ms", {})]
            name = "latency" if stage == "total" else f"latency.{stage}"
            out[f"{name}_p50_ms"] = statistic_with_ci(values, _percentile(50))
            out[f"{name}_p95_ms"] = statistic_with_ci(values, _percentile(95))
        eff = ctx.efficiency
        if "prepare_s" in eff:
            out["prepare_s"] = Aggregate(float(eff["prepare_s"]), None, 1)
        parts = eff.get("footprint_bytes") or {}
        passages = eff.get("num_passages") or 0
        if passages:
            counted = sum(v for k, v in parts.items() if not k.startswith("extra_"))
            out["footprint_mb_per_1k"] = Aggregate(counted / 1e6 / (passages / 1000), None, 1)
            for part, value in sorted(parts.items()):
                out[f"footprint_mb_per_1k.{part}"] = Aggregate(value / 1e6 / (passages / 1000), None, 1)
        if eff.get("peak_rss_bytes"):
            out["peak_rss_mb"] = Aggregate(eff["peak_rss_bytes"] / 1e6, None, 1)
        return out


@hookimpl
def register_metrics(register):
    register("answer", AnswerMetric())
    register("retrieval", RetrievalMetric())
    register("evidence", EvidenceMetric())
    register("efficiency", EfficiencyMetric())

"""Choose the extractive reader's settings on a task's dev split (never on test).

Trains the reader once per training setting (the weights after epoch e do not
depend on the number of epochs asked for, so every `--epochs` value shares
one training; see plugins/extractive_reader/train.py) and scores each
(epochs, max_answer_tokens, passage_weight) on the dev questions, reading the
gold passages (oracle) and, with --bm25, the top-5 BM25 passages. Prints one
line per setting and writes them as JSON to --out.

    python benchmarks/extractive_reader_dev.py --task nq_5k --epochs 1,2 --max-answer-tokens 5,10
"""

from __future__ import annotations

import argparse
import json
import time

from rag_bench.runner import build_reader
from rag_bench.scoring.answer import exact_match, f1_score
from rag_bench.task_store import load_task
from rag_bench_plugins.extractive_reader.data import bm25_candidates, passage_text


def score(reader, questions, evidence) -> dict[str, float]:
    answers = []
    for lo in range(0, len(questions), 32):
        answers += reader.read(questions[lo : lo + 32], evidence[lo : lo + 32])
    em = [exact_match(a.answer, q.answers) for a, q in zip(answers, questions)]
    f1 = [f1_score(a.answer, q.answers) for a, q in zip(answers, questions)]
    return {"em": round(sum(em) / len(em), 4), "f1": round(sum(f1) / len(f1), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--epochs", default="1,2")
    parser.add_argument("--max-answer-tokens", default="10")
    parser.add_argument("--passage-weight", default="1.0")
    parser.add_argument("--bm25", action="store_true", help="also score reading the top-5 BM25 passages")
    parser.add_argument("-R", dest="settings", action="append", default=[], help="other reader settings, key=value")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    task = load_task(args.task)
    questions = task.split(args.split)
    by_id = task.passages_by_id
    evidences = {"oracle": [[passage_text(by_id[d]) for d in q.gold_doc_ids if d in by_id] for q in questions]}
    if args.bm25:
        ranked = bm25_candidates(task.corpus, questions, depth=5)
        evidences["bm25_top5"] = [[passage_text(task.corpus[i]) for i in row] for row in ranked]
    base = dict(s.split("=", 1) for s in args.settings)
    rows = []
    for epochs in args.epochs.split(","):
        for tokens in args.max_answer_tokens.split(","):
            for weight in args.passage_weight.split(","):
                settings = {**base, "epochs": epochs, "max_answer_tokens": tokens, "passage_weight": weight}
                reader = build_reader("extractive", settings)
                started = time.perf_counter()
                reader.prepare(task)
                row = {"task": args.task, "split": args.split, **settings, "prepare_s": round(time.perf_counter() - started, 1)}
                for name, evidence in evidences.items():
                    row[name] = score(reader, questions, evidence)
                print(json.dumps(row), flush=True)
                rows.append(row)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

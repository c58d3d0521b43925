"""Dev probe of llm_memory's objective and layout (issue 27): train a memory on a slice of a task and score it on the
**dev** split beside the trivial systems that could produce the same numbers. Never touches test.

The slice: the gold passages of the first `--train-questions` train questions and of every dev question, plus
`--distractors` other passages of the corpus in corpus order (so routing has something to get wrong). Reported, for
each `-P` configuration (repeat `--config "key=value,key=value"`; each trains its own memory):

- routing recall@1/@5 on dev, untrained (the memory's initial routing) and trained, paired;
- evidence ROUGE-L of the top-1 generated text against the gold evidence, and answer_recall@1;
- the same for the text store (the routed passage's best-overlap sentence cut to the same token budget), the no-LM
  readout (z's content slots read back through the nearest input embedding), the hard shuffle (the next-ranked
  passage's z) and the question echo;
- query dependence: the share of top-1 texts unchanged when another dev question is put in with z held.

    python benchmarks/llm_memory_objective_probe.py --task nq_5k --steps 400 \\
        --config "evidence_target=opening,z_layout=key+tokens" \\
        --config "evidence_target=evidence,z_layout=key+states,max_evidence_tokens=33,max_new_tokens=32" \\
        --out docs/benchmarks/llm_memory_objective_probe.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch


def parse_config(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split(",") if pair)


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def paired(a, b) -> dict:
    """Mean of a - b with a 95% percentile-bootstrap interval over questions."""
    import numpy as np

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), size=(1000, len(diff)))].mean(1)
    return {"mean": float(diff.mean()), "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]}


def task_slice(task, train_questions: int, distractors: int):
    from rag_bench_plugins.llm_memory.evaluation import gold_slice

    train = [q for q in task.split("train") if q.gold_evidence][:train_questions]
    dev = [q for q in task.split("dev") if q.gold_evidence]
    gold, _ = gold_slice(task.corpus, train + dev, 10 ** 9)
    wanted = {p.doc_id for p in gold}
    extra = [p for p in task.corpus if p.doc_id not in wanted][:distractors]
    return gold + extra, train, dev


def score(system, dev, folder: Path, batch: int = 32) -> dict:
    from rag_bench.scoring.evidence import rouge_l
    from rag_bench.scoring.retrieval import has_answer

    from rag_bench_plugins.llm_memory import controls as ctl
    from rag_bench_plugins.llm_memory.generation import encode, generate, route
    from rag_bench_plugins.llm_memory.routing_check import InitialRouting, load_initial

    model, tok, params = system.model, system.tokenizer, system.params
    budget = params.max_new_tokens
    initial = load_initial(folder)
    initial = InitialRouting(initial, model.z.device) if initial is not None else None
    rows = {name: [] for name in ("r1", "r5", "r1_init", "r5_init", "rouge", "ans", "store_rouge", "store_ans",
                                  "readout_rouge", "readout_ans", "hard_rouge", "hard_ans", "echo_rouge", "echo_ans",
                                  "unchanged")}
    shown: list[dict] = []
    for start in range(0, len(dev), batch):
        qs = dev[start : start + batch]
        texts = [q.text for q in qs]
        routed = route(model, tok, texts, 5, params).positions
        golds = [set(q.gold_doc_ids) for q in qs]
        for row, gold in zip(routed.tolist(), golds):
            rows["r1"].append(float(system.doc_ids[row[0]] in gold))
            rows["r5"].append(float(any(system.doc_ids[i] in gold for i in row)))
        if initial is not None:
            top = initial.top(model, *encode(model, tok, texts, params), 5).tolist()
            for row, gold in zip(top, golds):
                rows["r1_init"].append(float(system.doc_ids[row[0]] in gold))
                rows["r5_init"].append(float(any(system.doc_ids[i] in gold for i in row)))
        first = routed[:, :1]
        generated = [t[0] for t in generate(model, tok, texts, first, params)]
        store = [t[0] for t in ctl.text_store(tok, texts, [[system.passages[int(i)]] for i in first[:, 0]], budget)]
        readout = ctl.no_lm_readout(model, tok, model.z[first[:, 0].to(model.z.device)], budget)
        hard = [t[0] for t in generate(model, tok, texts, first, params, z=model.z[routed[:, 1].to(model.z.device)])]
        swapped = [t[0] for t in generate(model, tok, texts[1:] + texts[:1], first, params)]
        for q, g, s, r, h, w in zip(qs, generated, store, readout, hard, swapped):
            gold_text = " ".join(q.gold_evidence)
            for name, text in (("", g), ("store_", s), ("readout_", r), ("hard_", h), ("echo_", q.text)):
                rows[f"{name}rouge"].append(rouge_l(text, gold_text))
                rows[f"{name}ans"].append(float(has_answer(text, q.answers)))
            rows["unchanged"].append(float(w == g))
            if len(shown) < 8:
                shown.append({"question": q.text, "generated": g, "text_store": s, "no_lm_readout": r,
                              "swapped_question": w, "gold": " ".join(q.gold_evidence)})
    out = {name: mean(values) for name, values in rows.items() if values}
    out["delta"] = {f"{metric}-{control}": paired(rows[metric], rows[f"{control}_{metric}"])
                    for metric in ("rouge", "ans") for control in ("store", "readout", "hard", "echo")}
    if rows["r1_init"]:
        out["delta"]["r1-init"] = paired(rows["r1"], rows["r1_init"])
    out["examples"] = shown
    return out


def write(args, passages: int, train: int, dev: int, results: list) -> None:
    """The probe's record: the slice, the machine, the reproducing command and every configuration scored so far."""
    record = {"task": args.task, "split": "dev", "passages": passages, "train_questions": train,
              "dev_questions": dev, "steps": args.steps, "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "command": "python benchmarks/llm_memory_objective_probe.py " +
              " ".join(f"--config {c!r}" for c in args.config) + f" --task {args.task} --steps {args.steps} "
              f"--train-questions {args.train_questions} --distractors {args.distractors}", "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="nq_5k")
    parser.add_argument("--train-questions", type=int, default=600)
    parser.add_argument("--distractors", type=int, default=400)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--config", action="append", default=[], help="comma-separated -P settings of one memory")
    parser.add_argument("--work", type=Path, default=Path("runs/probes/llm_memory_objective"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from rag_bench.params import parse_params
    from rag_bench.task_store import load_task

    from rag_bench_plugins.llm_memory.config import LLMMemoryParams
    from rag_bench_plugins.llm_memory.system import MemorySystem

    task = load_task(args.task)
    passages, train, dev = task_slice(task, args.train_questions, args.distractors)
    results = []
    for text in args.config or [""]:
        settings = {"max_train_steps": str(args.steps), **parse_config(text)}
        params = parse_params(LLMMemoryParams, settings, "llm_memory")
        name = "__".join(f"{k}={v}" for k, v in sorted(parse_config(text).items())) or "default"
        folder = args.work / args.task / f"{name}__steps{args.steps}"
        started = time.perf_counter()
        if (folder / "memory.json").is_file():
            system = MemorySystem.load(folder, {p.doc_id: p for p in passages}, runtime=params)
        else:
            system, _ = MemorySystem.fit(params, passages, train, folder, dev=dev)
        fit_s = time.perf_counter() - started
        figures = score(system, dev, folder)
        results.append({"config": parse_config(text), "fit_s": fit_s, "train": {
            k: system.card.get("train", {}).get(k) for k in ("steps", "seconds", "examples", "kinds")}, "dev": figures})
        print(json.dumps(results[-1]["config"]), json.dumps({k: v for k, v in figures.items() if k != "delta"}), flush=True)
        write(args, len(passages), len(train), len(dev), results)  # after each memory: a stopped probe keeps the rest


if __name__ == "__main__":
    main()

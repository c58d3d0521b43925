"""The record of an llm_memory dev run: what chose (or kept) a default before its test row was published.

Reads a finished run directory of ``rag-bench run --provider llm_memory --task T --split dev`` and the memory its
provider trained (the run's cached workdir: the main memory's card and the closed-book control's), and writes one
JSON with the command, the configuration hash, the training (steps, seconds, the dev routing curve and the point
kept by early stopping, the last logged losses) and every aggregate of the run, so the dev figures a note or
docs/LLM_MEMORY.md quotes are on file::

    python benchmarks/llm_memory_dev_record.py RUN_DIR --machine "AMD EPYC, 2 vCPUs" \\
        --out docs/benchmarks/llm_memory_default_dev.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def training(card_path: Path) -> dict:
    """A memory card's training summary (empty when that memory was not trained in this workdir)."""
    if not card_path.is_file():
        return {}
    train = json.loads(card_path.read_text(encoding="utf-8")).get("train", {})
    out = {k: train[k] for k in ("steps", "seconds", "stopped_early") if k in train}
    if train.get("routing_curve"):
        curve = train["routing_curve"]
        out["routing_curve"] = curve.get("points", [])
        out["routing_kept_step"] = curve.get("kept_step")
    if train.get("history"):
        out["final"] = train["history"][-1]
    return out


def record(run_dir: Path, machine: str, what: str) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    if manifest["provider"].get("name") != "llm_memory":
        raise SystemExit(f"{run_dir} is a {manifest['provider'].get('name')} run, not llm_memory")
    from rag_bench.leaderboard.publish import portable_command

    workdir = Path(manifest["sessions"][-1]["workdir"])
    return {"what": what, "command": " ".join(portable_command(manifest["command"])), "config_hash": manifest["config_hash"],
            "date": manifest["created"], "machine": machine, "workdir": workdir.name,
            "train": training(workdir / "memory" / "memory.json"),
            "closed_book_train": training(workdir / "closed_book" / "memory.json"),
            "aggregate": metrics["aggregate"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--machine", default="unspecified")
    parser.add_argument("--what", default="an llm_memory dev run before its test row was published")
    args = parser.parse_args()
    args.out.write_text(json.dumps(record(args.run_dir, args.machine, args.what), indent=1, sort_keys=True) + "\n",
                        encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

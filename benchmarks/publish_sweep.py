"""Copy a finished sweep's summary and heat-maps into the published results, with portable paths.

`rag-bench report RESULTS --runs-dir RESULTS` reads sweeps from RESULTS/sweeps/<name>/summary.json. A sweep's own
summary names its cells' run folders and logs by the absolute paths of the machine it ran on; the published copy
names them relative to the runs folder (`nq_2k5/llm_memory__dev__none__<hash>`), as published rows do, and
leaves the logs out. The figures in the summary are not touched.

    python benchmarks/publish_sweep.py runs/sweeps/phase2-z_dim --runs-dir runs --into leaderboard/results/sweeps
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def portable(path: str | None, runs_dir: Path) -> str | None:
    """`path` relative to `runs_dir` when it lies under it, else only its last two parts (task/run folder)."""
    if not path:
        return path
    p = Path(path).resolve()
    try:
        return p.relative_to(runs_dir.resolve()).as_posix()
    except ValueError:
        return "/".join(p.parts[-2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the sweep's folder (holds summary.json)")
    parser.add_argument("--runs-dir", type=Path, required=True, help="the --runs-dir the sweep ran with")
    parser.add_argument("--into", type=Path, default=Path("leaderboard/results/sweeps"))
    args = parser.parse_args()
    summary = json.loads((args.sweep / "summary.json").read_text(encoding="utf-8"))
    if any(c["status"] != "done" for c in summary["cells"]):
        raise SystemExit(f"{args.sweep}: not every cell is done; finish the sweep (run it again) before publishing")
    for cell in summary["cells"]:
        cell["run"] = portable(cell["run"], args.runs_dir)
        cell["log"] = None
    command = summary.get("command") or []
    for option in ("--runs-dir", "--out"):  # machine folders: the published command uses the defaults
        if option in command:
            at = command.index(option)
            command[at : at + 2] = []
    out = args.into / args.sweep.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                      encoding="utf-8")
    for name in ("summary.md", "summary.csv"):
        text = (args.sweep / name).read_text(encoding="utf-8")
        if name == "summary.csv":
            for cell in json.loads((args.sweep / "summary.json").read_text(encoding="utf-8"))["cells"]:
                if cell["run"]:
                    text = text.replace(cell["run"], portable(cell["run"], args.runs_dir))
        (out / name).write_text(text, encoding="utf-8")
    for figure in sorted(args.sweep.glob("heatmap-*.png")):
        shutil.copyfile(figure, out / figure.name)
    print(f"published {args.sweep} -> {out}")


if __name__ == "__main__":
    main()

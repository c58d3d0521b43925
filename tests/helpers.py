"""Small helpers shared by tests."""

from __future__ import annotations

import http.server
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Iterator

from rag_bench.runner import RunConfig, execute


def run_quietly(tmp_path: Path, provider: str, task: str = "nq_5k", **kwargs):
    """Run a configuration into `tmp_path/runs` and return the RunResult."""
    cfg = RunConfig(provider=provider, task=task, runs_dir=tmp_path / "runs", **kwargs)
    return execute(cfg)


def write_slice_card(folder: Path, task, name: str, train: int = 40, test: int = 24, *, dev: int = 0,
                     distractors: int = 0) -> str:
    """A local task card (`builder: jsonl`) cut from `task`: the first `train`, `dev` (a dev split only when asked for)
    and `test` questions that have gold evidence, their gold passages as the corpus, then the first `distractors`
    other passages. Returns the card's path for `--task`."""
    import hashlib
    import json

    import yaml

    splits = (("train", train), ("dev", dev), ("test", test)) if dev else (("train", train), ("test", test))
    picked = [q for split, count in splits for q in [q for q in task.split(split) if q.gold_evidence][:count]]
    wanted = {d for q in picked for d in q.gold_doc_ids}
    others = [p for p in task.corpus if p.doc_id not in wanted][:distractors]
    corpus = [{"_id": p.doc_id, "title": p.title, "text": p.text}
              for p in [*(p for p in task.corpus if p.doc_id in wanted), *others]]
    queries = [{"_id": q.qid, "text": q.text, "answers": list(q.answers), "split": q.split,
                "gold_doc_ids": list(q.gold_doc_ids), "gold_evidence": list(q.gold_evidence)} for q in picked]
    folder.mkdir(parents=True)
    sha = {}
    for source, rows in (("corpus", corpus), ("queries", queries)):
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (folder / f"{source}.jsonl").write_text(text, encoding="utf-8")
        sha[source] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    card = {"name": name, "version": 1, "builder": "jsonl", "splits": [split for split, _ in splits], "k": [1, 5],
            "sources": {s: {"path": f"{s}.jsonl", "sha256": h} for s, h in sha.items()}}
    (folder / "card.yaml").write_text(yaml.safe_dump(card), encoding="utf-8")
    return str(folder / "card.yaml")


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """A loopback HTTP server publishing `folder`'s files (as a source's origin would), quietly; yields its base URL."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()

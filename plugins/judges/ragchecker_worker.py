"""RAGChecker in an environment of its own: the process the `ragchecker` judge drives when RAGChecker is not
installed beside rag-bench (its refchecker pins transformers<5; see `rag-bench judges install-ragchecker`).

Run by path with that environment's Python; it imports only the standard library and ragchecker, never rag-bench.
It talks JSON lines over stdin/stdout, and every LLM call RAGChecker makes goes back to the judge, which answers it
through its own endpoint, cache, circuit breaker and usage accounting, exactly as when RAGChecker runs in-process::

    judge  -> worker  {"type": "job", "id": N, "model": M, "result": {query_id, query, gt_answer, response, retrieved_context}}
    worker -> judge   {"type": "ask", "id": N, "call": C, "prompts": [...]}
    judge  -> worker  {"type": "replies", "id": N, "call": C, "replies": [...]}   or   {..., "error": "why"}
    worker -> judge   {"type": "done", "id": N, "metrics": {...}, "response_claims": ..., "gt_answer_claims": ..., "error": null | {"type", "message"}}

The worker first says {"type": "ready", "ragchecker": VERSION} (or {"type": "fatal", "message"} and exits); it
evaluates up to --concurrency jobs at once and exits when its stdin closes and its jobs are done.
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor


class JudgeCallFailed(RuntimeError):
    """The judge could not answer an LLM call (its endpoint failed); the judge keeps the real exception."""


class Worker:
    def __init__(self, out, concurrency: int):
        self.out = out
        self.lock = threading.Lock()
        self.waiting: dict[tuple[int, int], queue.Queue] = {}
        self.calls = itertools.count()
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ragchecker")

    def send(self, message: dict) -> None:
        line = json.dumps(message, ensure_ascii=False)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    def ask(self, job: int, prompts: list[str]) -> list[str]:
        call = next(self.calls)
        box: queue.Queue = queue.Queue(maxsize=1)
        with self.lock:
            self.waiting[(job, call)] = box
        self.send({"type": "ask", "id": job, "call": call, "prompts": list(prompts)})
        reply = box.get()
        if "error" in reply:
            raise JudgeCallFailed(reply["error"])
        return reply["replies"]

    def answer(self, message: dict) -> None:
        with self.lock:
            box = self.waiting.pop((message["id"], message["call"]))
        box.put(message)

    def evaluate(self, message: dict) -> None:
        job = message["id"]
        result, exc = evaluate(message["result"], message["model"], lambda prompts: self.ask(job, prompts))
        error = None if exc is None else {"type": type(exc).__name__, "message": str(exc)}
        self.send({"type": "done", "id": job, "metrics": dict(result.metrics or {}), "error": error,
                   "response_claims": result.response_claims, "gt_answer_claims": result.gt_answer_claims})

    def run(self, lines) -> None:
        for line in lines:
            if not line.strip():
                continue
            message = json.loads(line)
            if message["type"] == "job":
                self.pool.submit(self.evaluate, message)
            elif message["type"] == "replies":
                self.answer(message)
        self.pool.shutdown(wait=True)


def evaluate(fields: dict, model: str, ask) -> tuple[object, Exception | None]:
    """RAGChecker's evaluation of one question (`fields`: RAGResult's, evidence as doc_id/text dicts), its LLM calls
    through `ask`: the evaluated RAGResult, and the exception that stopped it, if any. The in-process judge runs the
    same function."""
    from ragchecker.container import RAGResult, RAGResults, RetrievedDoc
    from ragchecker.evaluator import RAGChecker
    from ragchecker.metrics import all_metrics, overall_metrics

    result = RAGResult(query_id=fields["query_id"], query=fields["query"], gt_answer=fields["gt_answer"],
                       response=fields["response"],
                       retrieved_context=[RetrievedDoc(doc_id=d["doc_id"], text=d["text"])
                                          for d in fields["retrieved_context"]])
    checker = RAGChecker(extractor_name=model, checker_name=model, custom_llm_api_func=ask)
    try:
        checker.evaluate(RAGResults(results=[result]), metrics=all_metrics if result.retrieved_context else overall_metrics)
    except Exception as exc:  # reported with its question; the others go on
        return result, exc
    return result, None


def quiet() -> None:
    """No progress bar per batch of calls and no loguru lines from RAGChecker and refchecker (as in-process)."""
    from loguru import logger
    from refchecker.checker import llm_checker
    from refchecker.extractor import llm_extractor

    logger.disable("ragchecker")
    logger.disable("refchecker")
    for module in (llm_checker, llm_extractor):
        module.tqdm = lambda iterable, *args, **kwargs: iterable


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever the libraries print stays off the protocol stream
    worker = Worker(out, max(1, args.concurrency))
    try:
        from importlib.metadata import version

        import ragchecker.evaluator  # noqa: F401  (the slow import, before saying ready)

        quiet()
    except Exception as exc:
        worker.send({"type": "fatal", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    worker.send({"type": "ready", "ragchecker": version("ragchecker"), "python": sys.version.split()[0]})
    worker.run(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The judge's side of `ragchecker_worker.py`: start the worker in RAGChecker's environment, hand it one job per
question, answer its LLM calls through each job's session, and collect the evaluated results."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

from rag_bench.api import RagBenchError

WORKER = Path(__file__).with_name("ragchecker_worker.py")
#: How long the worker may take to import RAGChecker (torch, spaCy, transformers) before it says ready.
START_TIMEOUT_S = 600


class WorkerError(RuntimeError):
    """An exception RAGChecker raised in the worker, by its type name and message."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class RagcheckerWorker:
    """One worker process for a judging pass (a context manager: the process ends with it)."""

    def __init__(self, python: Path, concurrency: int):
        self.python = python
        self.concurrency = max(1, concurrency)
        self.stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self.proc = subprocess.Popen([str(python), str(WORKER), "--concurrency", str(self.concurrency)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     encoding="utf-8", bufsize=1)
        self.lock = threading.Lock()
        self.jobs: dict[int, Any] = {}
        self.results: dict[int, Future] = {}
        self.calls = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ragchecker-calls")
        self.ready: Future = Future()
        self.reader = threading.Thread(target=self._read, name="ragchecker-worker", daemon=True)
        self.reader.start()

    # -- protocol -----------------------------------------------------------
    def _send(self, message: dict) -> None:
        with self.lock:
            self.proc.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
            self.proc.stdin.flush()

    def _read(self) -> None:
        try:
            for line in self.proc.stdout:
                message = json.loads(line)
                kind = message["type"]
                if kind == "ready":
                    self.ready.set_result(message)
                elif kind == "fatal":
                    self.ready.set_exception(self._failed(f"RAGChecker does not import there: {message['message']}"))
                elif kind == "ask":
                    self.calls.submit(self._answer, message)
                elif kind == "done":
                    self.results[message["id"]].set_result(message)
        finally:  # the worker is gone: nothing still waiting may wait for ever
            error = self._failed("the RAGChecker worker stopped")
            for future in [self.ready, *self.results.values()]:
                if not future.done():
                    future.set_exception(error)

    def _answer(self, message: dict) -> None:
        job = self.jobs[message["id"]]
        reply = {"type": "replies", "id": message["id"], "call": message["call"]}
        try:
            reply["replies"] = job.ask(message["prompts"])
        except Exception as exc:  # the job keeps the exception; RAGChecker in the worker sees it fail
            reply["error"] = f"{type(exc).__name__}: {exc}"
        try:
            self._send(reply)
        except (OSError, ValueError):
            pass  # the worker died (or the pass ended); the reader reports it

    def _failed(self, what: str) -> RagBenchError:
        self.stderr.flush()
        self.stderr.seek(0)
        tail = "\n".join(self.stderr.read().strip().splitlines()[-15:])
        return RagBenchError(f"ragchecker: {what} ({self.python}){': ' + tail if tail else ''}")

    # -- use ------------------------------------------------------------------
    def judge_all(self, jobs: Sequence[Any], model: str) -> list:
        """Evaluate every job (a `_Job` of ragchecker_judge) in the worker, RAGChecker's extractor and checker
        named `model`; their judgements, in order."""
        try:
            self.ready.result(timeout=START_TIMEOUT_S)
        except TimeoutError:
            raise self._failed(f"the RAGChecker worker did not start within {START_TIMEOUT_S} s") from None
        for number, job in enumerate(jobs):
            self.jobs[number] = job
            self.results[number] = Future()
            self._send({"type": "job", "id": number, "model": model, "result": job.fields})
        judgements = []
        for number, job in enumerate(jobs):
            done = self.results[number].result()
            result = SimpleNamespace(metrics=done["metrics"], response_claims=done["response_claims"],
                                     gt_answer_claims=done["gt_answer_claims"])
            error = None
            if done["error"] is not None:  # a failed call: its real exception, as in-process
                error = job.call_error or WorkerError(done["error"]["type"], done["error"]["message"])
            judgements.append(job.finish(result, error))
        with self.lock:
            self.proc.stdin.close()  # the worker ends once its jobs are done and its input is closed
        return judgements

    def __enter__(self) -> "RagcheckerWorker":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            with self.lock:
                if not self.proc.stdin.closed:
                    self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)
        self.calls.shutdown(wait=True)
        self.stderr.close()

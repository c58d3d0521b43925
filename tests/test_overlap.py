"""The next batch's provide overlaps this batch's read; records, their order and failure handling stay as they were.

Ordering is asserted from events, not from timing: the reader of batch n waits
(a safety timeout only) for the event "provide of batch n+1 started" and logs
what it saw.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest

from rag_bench import hookimpl
from rag_bench.errors import RagBenchError
from rag_bench.lookahead import Lookahead
from rag_bench.plugins import register_plugin, reset_for_tests
from rag_bench.provider import EvidenceProvider
from rag_bench.reader import Reader
from rag_bench.runner import RunConfig, execute
from rag_bench.types import Hit, ProvidedEvidence, ReaderAnswer

BATCH = 2
LIMIT = 6  # three batches
WAIT_S = 10.0  # only a guard against hanging when the overlap is missing; no test waits this long when it passes


class Log:
    """Events in the order they happened, from any thread, plus an Event per 'provide started' of each batch."""

    def __init__(self):
        self.events: list[str] = []
        self.lock = threading.Lock()
        self.provide_started: dict[int, threading.Event] = {}
        self.provide_threads: set[int] = set()
        self.fail_batch: int | None = None
        self.short_batch: int | None = None  # the batch whose provide, or read, returns one result too few
        self.short_side = "provide"
        self.batches = 0

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def started(self, n: int) -> threading.Event:
        with self.lock:
            return self.provide_started.setdefault(n, threading.Event())


LOG = Log()


class Ranked(EvidenceProvider):
    """The first passages in corpus order for every question; logs each provide's start and end."""

    def prepare(self, task, workdir):
        self.corpus = task.corpus[:3]

    def provide(self, questions, k):
        n = LOG.batches
        LOG.batches += 1
        LOG.provide_threads.add(threading.get_ident())
        LOG.add(f"provide {n} start")
        LOG.started(n).set()
        if n == LOG.fail_batch:
            raise RuntimeError(f"provider broke on batch {n}")
        hits = [Hit(p.doc_id, float(-i)) for i, p in enumerate(self.corpus[:k])]
        LOG.add(f"provide {n} end")
        short = int(n == LOG.short_batch and LOG.short_side == "provide")
        return [ProvidedEvidence(hits=list(hits), evidence=[p.text for p in self.corpus[:k]]) for _ in questions[short:]]

    def close(self):
        LOG.add("provider closed")


class Waiting(Reader):
    """Answers 'x'; while reading batch n it waits for provide n+1 to start (when `wait`) and logs whether it did."""

    wait = True
    failing = False

    def __init__(self, params=None):
        super().__init__(params)
        self.n = 0

    def read(self, questions, evidence):
        n, self.n = self.n, self.n + 1
        LOG.add(f"read {n} start")
        if Waiting.wait and n + 1 < LIMIT // BATCH:
            seen = LOG.started(n + 1).wait(WAIT_S)
            LOG.add(f"read {n} saw provide {n + 1}: {seen}")
        LOG.add(f"read {n} end")
        if Waiting.failing:
            return [ReaderAnswer(answer=None, error="endpoint down") for _ in questions]
        short = int(n == LOG.short_batch and LOG.short_side == "read")
        return [ReaderAnswer(answer="x") for _ in questions[short:]]


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register("ranked_logged", Ranked)

    @hookimpl
    def register_readers(self, register):
        register("waiting", Waiting)


@pytest.fixture()
def plugin():
    global LOG
    LOG = Log()
    Waiting.wait, Waiting.failing = True, False
    register_plugin(Plugin(), "overlap-test")
    yield
    reset_for_tests()


def run(tmp_path, **kwargs):
    cfg = dict(provider="ranked_logged", task="nq_5k", limit=LIMIT, ks=(1, 3), reader="waiting", batch_size=BATCH,
               runs_dir=tmp_path / "runs")
    return execute(RunConfig(**{**cfg, **kwargs}))


def records(result_or_path):
    path = getattr(result_or_path, "path", result_or_path)
    return [json.loads(line) for line in (path / "records.jsonl").read_text().splitlines()]


def test_provide_of_the_next_batch_starts_before_this_batch_is_read(plugin, nq_5k, tmp_path):
    result = run(tmp_path)
    events = LOG.events
    for n in range(LIMIT // BATCH - 1):
        assert f"read {n} saw provide {n + 1}: True" in events
        assert events.index(f"provide {n + 1} start") < events.index(f"read {n} end")
        assert events.index(f"provide {n} end") < events.index(f"read {n} start")
    assert len(LOG.provide_threads) == 1 and threading.get_ident() not in LOG.provide_threads  # one worker thread
    assert events[-1] == "provider closed"
    assert [r["qid"] for r in records(result)] == [q.qid for q in nq_5k.split("test")[:LIMIT]]
    session = result.manifest["sessions"][-1]
    assert result.manifest["status"] == "complete" and session["provide_overlaps_read"]
    # The question loop's own wall time, within the session's (whose stamps are whole seconds)
    span = (datetime.fromisoformat(session["ended"]) - datetime.fromisoformat(session["started"])).total_seconds()
    assert 0 < session["question_loop_s"] <= span + 1


def test_without_overlap_provide_and_read_alternate_and_the_records_are_the_same(plugin, nq_5k, tmp_path):
    overlapped = records(run(tmp_path / "a"))
    global LOG
    LOG = Log()
    Waiting.wait = False
    serial = run(tmp_path / "b", overlap=False)
    expected = []
    for n in range(LIMIT // BATCH):
        expected += [f"provide {n} start", f"provide {n} end", f"read {n} start", f"read {n} end"]
    assert LOG.events == [*expected, "provider closed"]
    assert LOG.provide_threads == {threading.get_ident()}

    def comparable(rows):
        return [{k: v for k, v in r.items() if k != "timings_ms"} for r in rows]

    assert comparable(records(serial)) == comparable(overlapped)


def test_a_provider_error_in_a_later_batch_keeps_the_records_before_it_and_fails_the_run(plugin, nq_5k, tmp_path):
    LOG.fail_batch = 2
    with pytest.raises(RuntimeError, match="provider broke on batch 2"):
        run(tmp_path)
    (run_dir,) = [p.parent for p in tmp_path.rglob("manifest.json")]
    assert len(records(run_dir)) == 2 * BATCH  # batches 0 and 1 were read and written before the error surfaced
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "provider broke on batch 2" in manifest["error"]
    assert LOG.events[-1] == "provider closed" and "read 2 start" not in LOG.events


@pytest.mark.parametrize("side, message", [("provide", "provider ranked_logged returned 1 results for 2 questions"),
                                           ("read", "reader Waiting returned 1 answers for 2 questions")])
def test_a_provider_or_reader_that_returns_too_few_results_fails_the_run_and_loses_no_question(plugin, nq_5k, tmp_path,
                                                                                               side, message):
    LOG.short_batch, LOG.short_side = 1, side
    with pytest.raises(RuntimeError, match=message):
        run(tmp_path)
    (run_dir,) = [p.parent for p in tmp_path.rglob("manifest.json")]
    assert len(records(run_dir)) == BATCH  # batch 0 is written; nothing of batch 1 is paired up wrongly
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "failed"
    LOG.short_batch = None
    result = run(tmp_path)  # the resume answers every question
    assert result.manifest["status"] == "complete"
    assert sorted(r["qid"] for r in records(result)) == sorted(q.qid for q in nq_5k.split("test")[:LIMIT])


def test_a_reader_that_keeps_failing_stops_the_run_and_the_lookahead_batch_is_never_read(plugin, nq_5k, tmp_path):
    Waiting.failing = True
    with pytest.raises(RagBenchError, match="failed 2 questions in a row"):
        run(tmp_path, max_consecutive_failures=2)
    (run_dir,) = [p.parent for p in tmp_path.rglob("manifest.json")]
    assert [r["status"] for r in records(run_dir)] == ["failed", "failed"]
    assert "read 1 start" not in LOG.events  # provided ahead, but the run stopped before reading it
    # the provider is closed only after the provide in progress has ended
    assert LOG.events.index("provide 1 end") < LOG.events.index("provider closed")


def test_lookahead_yields_in_order_stays_one_ahead_and_raises_where_the_error_is():
    started: list[int] = []
    taken: list[int] = []

    def square(x):
        started.append(x)
        return x * x

    with Lookahead(square, range(5), ahead=1) as items:
        for x, result, seconds in items:
            assert result == x * x and seconds >= 0
            assert max(started) <= x + 1  # never more than one item ahead of the consumer
            taken.append(x)
    assert taken == [0, 1, 2, 3, 4]

    def broken(x):
        if x == 2:
            raise ValueError("two")
        return x

    got = []
    with pytest.raises(ValueError, match="two"):
        with Lookahead(broken, range(5), ahead=1) as items:
            for x, _, _ in items:
                got.append(x)
    assert got == [0, 1]


def test_leaving_the_block_early_waits_for_the_call_in_progress():
    in_progress, release = threading.Event(), threading.Event()
    ended: list[int] = []

    def slow(x):
        if x == 1:
            in_progress.set()
            release.wait(WAIT_S)
        ended.append(x)
        return x

    with Lookahead(slow, range(4), ahead=1) as items:
        def let_go():  # only once the block is being left, so the exit must have waited for item 1
            items.stopping.wait(WAIT_S)
            release.set()

        for x, _, _ in items:
            assert x == 0 and in_progress.wait(WAIT_S)  # item 1 is being computed now
            threading.Thread(target=let_go).start()
            break
    assert ended == [0, 1]  # the block was left only after the call in progress ended; none started after it

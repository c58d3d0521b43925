"""The lm-eval bridge: lm-eval generation tasks answered by a rag-bench reader over a provider's evidence.

Runs offline on a local lm-eval task (tests/fixtures/lm_eval) built from nq_5k's
test questions. The reader is a small deterministic one defined here (the
subject under test is the bridge): it answers with the title of its first
evidence passage, so every answer can be checked against bm25 directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag_bench import hookimpl
from rag_bench.errors import RagBenchError
from rag_bench.plugins import register_plugin, reset_for_tests
from rag_bench.reader import Reader
from rag_bench.runner import build_provider, prepare_provider
from rag_bench.types import Question, ReaderAnswer

pytest.importorskip("lm_eval")
from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from rag_bench.lm_eval_bridge import RagBenchLM, truncate_at  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "lm_eval"
TASK = "rag_bench_nq_5k"
LIMIT = 6


class EvidenceTitleReader(Reader):
    """Answers with the first evidence passage's title, then a second line the stop sequence must cut."""

    seen: list[tuple[str, list[str]]] = []

    def read(self, questions, evidence):
        out = []
        for question, texts in zip(questions, evidence):
            EvidenceTitleReader.seen.append((question.text, list(texts)))
            title = texts[0].split("\n", 1)[0] if texts else ""
            out.append(ReaderAnswer(answer=f"{title}\nthis line is after the stop sequence"))
        return out


class TitleReaderPlugin:
    @hookimpl
    def register_readers(self, register):
        register("evidence_title", EvidenceTitleReader)


@pytest.fixture()
def title_reader():
    EvidenceTitleReader.seen = []
    register_plugin(TitleReaderPlugin(), "evidence_title_test")
    yield EvidenceTitleReader
    reset_for_tests()


def test_truncate_at_cuts_before_the_first_stop_sequence():
    assert truncate_at("Paris\nFrance", ["\n"]) == "Paris"
    assert truncate_at("a. b; c", [";", "."]) == "a"
    assert truncate_at("no stop", ["\n", ""]) == "no stop"


def test_generation_task_runs_through_provider_evidence_and_reader(nq_5k, title_reader):
    results = simple_evaluate(
        model="rag_bench",
        model_args={"provider": "bm25", "task": "nq_5k", "reader": "evidence_title", "k": 3, "query_field": "question"},
        tasks=[TASK],
        task_manager=TaskManager(include_path=str(FIXTURES)),
        limit=LIMIT,
        log_samples=True,
    )
    samples = results["samples"][TASK]
    assert len(samples) == LIMIT
    bm25 = build_provider("bm25", {})
    prepare_provider("bm25", bm25, nq_5k)
    docs = [s["doc"] for s in samples]
    expected = bm25.provide([Question(d["qid"], d["question"], (), "test") for d in docs], 1)
    for sample, top in zip(samples, expected):
        # The answer is the top bm25 passage's title, cut at lm-eval's stop sequence "\n".
        assert sample["resps"][0][0] == top.evidence[0].split("\n", 1)[0]
    prompts = {text: texts for text, texts in title_reader.seen}
    for doc in docs:
        evidence = prompts[f"Question: {doc['question']}\nAnswer:"]
        assert len(evidence) == 3
    em = results["results"][TASK]["exact_match,none"]
    titles_matching = sum(any(s["resps"][0][0].lower() == a.lower() for a in s["doc"]["answers"]) for s in samples)
    assert em == pytest.approx(titles_matching / LIMIT)


def test_bad_model_arguments_say_what_to_pass(nq_5k):
    with pytest.raises(RagBenchError, match="provider=NAME,task="):
        RagBenchLM(task="nq_5k")
    with pytest.raises(RagBenchError, match="unknown argument 'colour'"):
        RagBenchLM(provider="no_retrieval", task="nq_5k", colour="red")
    with pytest.raises(RagBenchError, match="unknown provider"):
        RagBenchLM(provider="bm52", task="nq_5k")
    model = RagBenchLM(provider="no_retrieval", task="nq_5k", device="cpu")
    with pytest.raises(RagBenchError, match="generation tasks only"):
        model.loglikelihood([])


@pytest.mark.slow
def test_the_documented_command_line_works(nq_5k, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "rag_bench.lm_eval_bridge", "--model", "rag_bench",
         "--model_args", "provider=bm25,task=nq_5k,reader=none,query_field=question",
         "--tasks", TASK, "--include_path", str(FIXTURES), "--limit", "2", "--output_path", str(out)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (results,) = out.rglob("results_*.json")
    data = json.loads(results.read_text())
    assert data["results"][TASK]["exact_match,none"] == 0.0  # the `none` reader answers nothing
    assert data["config"]["model"] == "rag_bench"

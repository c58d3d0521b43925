"""`rag-bench write-curve`: held-out passages from dev only, the task view, write-in for every built-in provider on a
tiny corpus, the forgetting bookkeeping, the third-party hook through the example plugin, the report section."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag_bench.cli import cli
from rag_bench.errors import RagBenchError
from rag_bench.provider import EvidenceProvider, WriteCost, can_write
from rag_bench.preparation import build_provider, prepare_provider, provider_workdir
from rag_bench.task_store import load_task
from rag_bench.types import Hit, ProvidedEvidence
from rag_bench.write_curve.heldout import select_held_out, task_without
from rag_bench.write_curve.protocol import write_curve

from tests.helpers import write_slice_card
from tests.plugin_dist import env_with, rag_bench

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rag-bench-example-plugin"
#: llm_memory at tiny CPU settings (as tests/test_llm_memory_adapt_curve.py), without the controls.
TINY_MEMORY = dict(base="tiny", m_tokens=5, tiny_hidden=64, tiny_layers=2, tiny_heads=2, tiny_kv_heads=1,
                   tiny_intermediate=128, z_dim=32, route_dim=32, batch_size=16, max_train_steps=20, warmup_steps=5,
                   tokenizer_vocab=2000, pseudo_queries=3, max_query_tokens=24, max_evidence_tokens=24, max_new_tokens=8,
                   threads=1, checkpoint_every=1000, tokenizer="corpus", control_every=0)
HELD = 6


def write_card(folder: Path, task, name: str, train: int = 20, dev: int = 16, test: int = 8, distractors: int = 30) -> str:
    """A local task card cut from `task` with train, dev and test questions (those with gold evidence), their gold
    passages and a few other passages; returns the card's path."""
    return write_slice_card(folder, task, name, train, test, dev=dev, distractors=distractors)


@pytest.fixture(scope="module")
def card(nq_5k, tmp_path_factory) -> str:
    return write_card(tmp_path_factory.mktemp("task") / "nq_write", nq_5k, "nq_write")


@pytest.fixture(scope="module")
def task(card):
    return load_task(card)


def invoke(*args):
    return CliRunner().invoke(cli, ["write-curve", *map(str, args)])


# --- which passages, which questions ------------------------------------------------------------------------------


def test_held_out_passages_come_from_dev_never_test(task):
    held = select_held_out(task, HELD, batches=2, seed=0)
    dev_gold = {d for q in task.split("dev") for d in q.gold_doc_ids}
    other_gold = {d for q in task.questions if q.split != "dev" for d in q.gold_doc_ids}
    assert len(held.passages) == HELD and set(held.doc_ids) <= dev_gold and not set(held.doc_ids) & other_gold
    assert all(q.split == "dev" for q in held.new_questions + held.old_questions)
    assert [len(b) for b in held.batches] == [3, 3]
    # a question is new from the batch that completes its held-out gold passages; old questions name none of them
    for batch, questions in zip(held.batches, held.batch_questions):
        assert questions and all(set(q.gold_doc_ids) & {p.doc_id for p in batch} for q in questions)
    assert not {d for q in held.old_questions for d in q.gold_doc_ids} & set(held.doc_ids)
    # deterministic and seeded
    assert select_held_out(task, HELD, 2, 0).doc_ids == held.doc_ids
    assert select_held_out(task, HELD, 2, 1).doc_ids != held.doc_ids
    assert held.describe()["split"] == "dev" and "sha256(seed:qid)" in held.describe()["selection"]


def test_too_many_held_out_or_batches_or_no_dev_split_is_one_clear_error(task, nq_5k, tmp_path):
    elsewhere = {d for q in task.questions if q.split != "dev" for d in q.gold_doc_ids}
    eligible = len({d for q in task.split("dev") for d in q.gold_doc_ids} - elsewhere)
    with pytest.raises(RagBenchError, match=rf"offers {eligible} dev gold passages.*--held-out {eligible} or fewer"):
        select_held_out(task, eligible + 1)
    with pytest.raises(RagBenchError, match="--batches 7 is more than the 6 groups"):
        select_held_out(task, 6, batches=7)
    from tests.helpers import write_slice_card

    no_dev = load_task(write_slice_card(tmp_path / "nodev", nq_5k, "nq_write_nodev", train=5, test=5))
    with pytest.raises(RagBenchError, match="has no dev split"):
        select_held_out(no_dev, 2)


def test_the_view_is_a_task_of_its_own_for_every_cache(task):
    held = select_held_out(task, HELD)
    view = task_without(task, held.doc_ids)
    assert view.name.startswith(f"{task.name}-minus-") and view.version == task.version
    assert len(view.corpus) == len(task.corpus) - HELD and not set(held.doc_ids) & {p.doc_id for p in view.corpus}
    assert not any(set(q.gold_doc_ids) & set(held.doc_ids) for q in view.questions)
    assert set(view.files_sha256) == set(task.files_sha256)
    assert not set(view.files_sha256.values()) & set(task.files_sha256.values())
    bm25 = build_provider("bm25", {})
    assert provider_workdir("bm25", bm25, view) != provider_workdir("bm25", bm25, task)
    assert task_without(task, list(reversed(held.doc_ids))).name == view.name  # the set names the view


# --- write-in, provider by provider -------------------------------------------------------------------------------


BUILT_IN = {
    "bm25": {},
    "dense": {"model": "minilm"},
    "hybrid": {"model": "minilm", "reranker": "none"},
    "llm_memory": TINY_MEMORY,
}


def _top(provider, questions, k):
    return [[h.doc_id for h in ev.hits] for ev in provider.provide(questions, k)]


@pytest.mark.parametrize("name", list(BUILT_IN))
def test_a_written_passage_becomes_retrievable_and_an_old_one_stays(name, task):
    held = select_held_out(task, HELD)
    view = task_without(task, held.doc_ids)
    settings = {k: str(v) for k, v in BUILT_IN[name].items()}
    provider = build_provider(name, settings)
    assert can_write(provider)
    prepare_provider(name, provider, view)
    new, old = held.new_questions, held.old_questions
    depth = len(task.corpus)
    before_old = _top(provider, old, 5)
    footprint = sum(v for k, v in provider.footprint().items() if not k.startswith("extra_"))
    cost = provider.write(held.passages, steps=3)
    assert isinstance(cost, WriteCost)
    ranked_new = _top(provider, new, depth)
    ranked_old = _top(provider, old, depth)
    written = set(held.doc_ids)
    # every written passage is in the ranking now (none was before: they were not in the corpus)
    assert written <= {d for row in ranked_new for d in row}
    assert sum(v for k, v in provider.footprint().items() if not k.startswith("extra_")) > footprint
    if name == "llm_memory":
        assert cost.steps == 3 and provider.system.doc_ids[-HELD:] == held.doc_ids
        assert cost.info["loss_after"] < cost.info["loss_before"]  # z_new was optimised on the write objective
        # θ frozen, old z_i untouched: an old question's routing over the old passages is unchanged
        after_old = [[d for d in row if d not in written][:5] for row in ranked_old]
        assert after_old == before_old
    else:
        hits = [set(q.gold_doc_ids) & set(row[:5]) for q, row in zip(new, ranked_new)]
        assert sum(map(bool, hits)) >= len(new) // 2, hits  # most new questions find their passage in the top 5
        kept = [set(q.gold_doc_ids) & set(row[:5]) for q, row in zip(old, ranked_old)]
        was = [set(q.gold_doc_ids) & set(row) for q, row in zip(old, before_old)]
        assert sum(map(bool, kept)) >= sum(map(bool, was)) - 1  # old passages stay found
    provider.close()
    # the prepared state in the cache is the view's, unwritten
    again = build_provider(name, settings)
    prepare_provider(name, again, view)
    assert not written & {d for row in _top(again, new, depth) for d in row}
    again.close()


def test_llm_memory_write_curve_has_one_point_per_step_count(task):
    held = select_held_out(task, 4)
    settings = {k: str(v) for k, v in TINY_MEMORY.items()}
    result = write_curve(task, "llm_memory", lambda: build_provider("llm_memory", settings), held, steps=[3, 0])
    assert result["write_takes_steps"] is True and [p["steps"] for p in result["write_curve"]] == [0, 3]
    for point in result["write_curve"]:
        assert point["cost"]["provider"]["steps"] == point["steps"]
        assert point["cost"]["bytes_per_doc"] == 5 * 32 * 2  # one z_new: m_tokens x z_dim in fp16
        assert point["retention"]["recall@5"] is None or point["retention"]["recall@5"] >= 0
    assert result["reference"]["new"]["questions"] == len(held.new_questions)


# --- the forgetting bookkeeping, on providers whose memory is known -----------------------------------------------


class Lookup(EvidenceProvider):
    """Ranks the gold passages it holds first (then the others it holds, in order): perfect while it keeps them."""

    forget = False

    def prepare(self, task, workdir):
        self.held = {p.doc_id: p for p in task.corpus}

    def provide(self, questions, k):
        out = []
        for q in questions:
            ranked = [d for d in q.gold_doc_ids if d in self.held] + [d for d in self.held if d not in q.gold_doc_ids]
            ranked = ranked[:k]
            out.append(ProvidedEvidence([Hit(d, 1.0) for d in ranked], [self.held[d].text for d in ranked]))
        return out

    def write(self, passages, steps=None):
        new = {p.doc_id: p for p in passages}
        self.held = new if self.forget else {**self.held, **new}
        return WriteCost(bytes_added=0)

    def footprint(self):
        return {"text_store": sum(len(p.text) for p in self.held.values())}


class Forgets(Lookup):
    """Holds only the last batch written: forgets the corpus and every earlier batch."""

    forget = True


class ReadOnly(Lookup):
    write = EvidenceProvider.write


@pytest.mark.parametrize("cls, kept", [(Lookup, 1.0), (Forgets, 0.0)])
def test_forgetting_curve_shows_retention_one_or_zero(cls, kept, task):
    held = select_held_out(task, HELD, batches=3)
    result = write_curve(task, f"fake_{cls.__name__.lower()}", cls, held, steps=[5])
    assert result["write_takes_steps"] is False and [p["steps"] for p in result["write_curve"]] == [None]
    point = result["write_curve"][0]
    assert point["retention"]["recall@5"] == kept and point["new"]["recall@5"]["value"] == 1.0
    assert point["gap"]["recall@5"]["value"] == 0.0  # as good as prepared with them from the start
    curve = result["forgetting"]
    assert curve["batches"] == 3 and [p["after_batch"] for p in curve["points"]] == [1, 2, 3]
    last = {s["name"]: s for s in curve["points"][-1]["sets"]}
    assert list(last) == ["original", "batch 1", "batch 2", "batch 3"]
    assert last["original"]["retention"]["recall@5"] == kept
    assert last["batch 1"]["retention"]["recall@5"] == kept and last["batch 2"]["retention"]["recall@5"] == kept
    assert last["batch 3"]["retention"]["recall@5"] == 1.0  # just written
    first = {s["name"]: s for s in curve["points"][0]["sets"]}
    assert list(first) == ["original", "batch 1"]


def test_a_provider_without_the_hook_is_reported_as_cannot_write(task):
    assert not can_write(ReadOnly) and can_write(Lookup)
    result = write_curve(task, "fake_readonly", ReadOnly, select_held_out(task, 2))
    assert result["can_write"] is False and "write(passages, steps)" in result["reason"] and "write_curve" not in result


# --- the command, its file and the report section -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bm25_result(card, tmp_path_factory):
    out = tmp_path_factory.mktemp("write_curves")
    result = invoke("--task", card, "--provider", "bm25", "--held-out", HELD, "--batches", 2, "--out", out)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "nq_write__bm25.json").read_text())


def test_the_command_writes_one_json_with_both_curves_and_its_command(bm25_result, card):
    out, result = bm25_result
    assert result["command"][:2] == ["rag-bench", "write-curve"] and card in result["command"]
    assert result["can_write"] is True and result["view_task"].startswith("nq_write-minus-")
    (point,) = result["write_curve"]
    # bm25 rebuilt over old + new equals bm25 prepared with them: no gap
    assert point["new"]["recall@5"]["value"] == result["reference"]["new"]["recall@5"]["value"]
    assert result["before"]["new"]["recall@5"]["value"] == 0.0  # the passages were not there
    assert point["cost"]["seconds_per_doc"] > 0 and point["cost"]["bytes_per_doc"] > 0
    assert [p["after_batch"] for p in result["forgetting"]["points"]] == [1, 2]


def test_a_provider_that_cannot_write_gets_a_file_that_says_so(card, tmp_path):
    result = invoke("--task", card, "--provider", "no_retrieval", "--held-out", 2, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "nq_write__no_retrieval.json").read_text())
    assert saved["can_write"] is False and "cannot write" in result.output


@pytest.mark.parametrize("args, message", [
    (["--steps", "5,x"], "--steps"),
    (["--held-out", "0"], "--held-out must be at least 1"),
    (["--provider", "nope"], "nope"),
])
def test_bad_input_is_one_line(args, message, card, tmp_path):
    base = {"--task": card, "--provider": "bm25", "--out": str(tmp_path)}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    result = invoke(*[x for pair in base.items() for x in pair])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, result.output
    assert not list(tmp_path.glob("*.json"))


def test_report_section_draws_both_curves(bm25_result, tmp_path):
    from rag_bench.study.report.write_curve import write_curves_section

    out, _ = bm25_result
    report = tmp_path / "docs" / "RESULTS.md"
    text = write_curves_section(tmp_path / "docs" / "results", report, folder=out)
    assert "## New documents: the write protocol" in text and "| bm25 |" in text
    assert "rag-bench write-curve --task" in text
    figures = sorted((tmp_path / "docs" / "results" / "write-curves").glob("*.png"))
    assert [f.name for f in figures] == ["forgetting-nq_write.png", "write-nq_write.png"]
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in figures)
    empty = write_curves_section(tmp_path / "r", report, folder=tmp_path / "none")
    assert "No write curve found" in empty


# --- a third-party provider through the example plugin ------------------------------------------------------------


def test_the_example_plugin_writes_through_the_hook(card, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(EXAMPLE, source)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(source)], check=True, capture_output=True)
    out = tmp_path / "out"
    done = rag_bench(["write-curve", "--task", card, "--provider", "idf_overlap", "--held-out", "4", "--batches", "2",
                      "--out", str(out)], env_with(site))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((out / "nq_write__idf_overlap.json").read_text())
    assert result["can_write"] is True and result["write_takes_steps"] is False
    (point,) = result["write_curve"]
    assert point["new"]["recall@5"]["value"] > result["before"]["new"]["recall@5"]["value"] == 0.0
    assert point["cost"]["provider"]["bytes_added"] > 0
    assert len(result["forgetting"]["points"]) == 2

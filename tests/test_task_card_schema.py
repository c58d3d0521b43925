"""The task card schema (rag_bench.task_schema): shipped cards validate; typos, wrong types, missing keys and bad
metric families are one error naming the card and the dotted key; docs/TASK_CARDS.md shows the schema as declared."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from rag_bench.errors import RagBenchError
from rag_bench.local_task import definition_from_card_file
from rag_bench.task import TaskCard, TaskDefinition
from rag_bench.task_schema import CARD_KEYS, METRIC_FAMILIES, SOURCE_KEYS, card_problems, schema_markdown
from rag_bench_plugins.builtin_tasks import card_path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "plugins" / "builtin_tasks").glob("*.yaml"))
DOC = REPO / "docs" / "TASK_CARDS.md"


def shipped(name: str) -> dict:
    return copy.deepcopy(yaml.safe_load((REPO / "plugins" / "builtin_tasks" / f"{name}.yaml").read_text(encoding="utf-8")))


def error_of(data, where: str = "my_card.yaml") -> str:
    with pytest.raises(RagBenchError) as info:
        TaskCard.from_dict(data, where)
    return str(info.value)


def test_there_are_shipped_cards():
    assert len(SHIPPED) >= 9


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_card_validates(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert card_problems(data) == []
    card = TaskCard.from_yaml(path)
    assert card.name == path.stem
    assert card.raw == data  # the card is kept as written (manifests and published rows record it)
    assert set(card.metrics) <= set(METRIC_FAMILIES)


def test_the_installed_cards_are_the_shipped_ones():
    for path in SHIPPED:
        assert card_path(path.stem).read_bytes() == path.read_bytes()


def test_parsed_fields_are_unchanged_by_the_schema():
    card = TaskCard.from_yaml(REPO / "plugins" / "builtin_tasks" / "nq_5k.yaml")
    assert (card.name, card.version, card.splits, card.default_split, card.k) == (
        "nq_5k", 1, ("train", "dev", "test"), "test", (1, 5, 20))
    assert card.metrics == ("retrieval", "answer", "evidence", "efficiency")
    assert [s.name for s in card.sources] == ["nq_oracle", "flashrag_sample", "hotpotqa_dev"]
    dpr = TaskCard.from_yaml(REPO / "plugins" / "builtin_tasks" / "nq_open_dpr.yaml")
    assert dpr.external_corpus is not None and dpr.external_corpus.sources == ("lucene_index", "dense_index")
    assert "evidence" not in dpr.metrics  # no gold evidence: the card does not claim the family


def test_builtin_tasks_register_through_the_same_validation(monkeypatch):
    from rag_bench_plugins import builtin_tasks

    seen = []
    builtin_tasks.register_tasks(register=seen.append)
    assert {d.card.name for d in seen} == {p.stem for p in SHIPPED}

    calls = []
    import rag_bench.task as task_module

    real = task_module.validate_card
    monkeypatch.setattr(task_module, "validate_card", lambda data, where: (calls.append(where), real(data, where)))
    builtin_tasks.register_tasks(register=lambda definition: None)
    # from_yaml (the path) and TaskDefinition (the name) each validate every card
    assert len(calls) == 2 * len(SHIPPED)


def test_a_definition_with_a_card_that_bypassed_from_dict_is_refused():
    card = TaskCard.from_dict(shipped("musique"))
    bad = dict(card.raw, spilts=["test"])
    with pytest.raises(RagBenchError, match=r"task card musique: unknown key `spilts` \(did you mean `splits`\?\)"):
        TaskDefinition(dataclasses.replace(card, raw=bad), lambda card, sources: ([], []))


def test_an_unknown_top_level_key_names_it_and_the_closest_key():
    data = shipped("nq_5k")
    data["metric"] = data.pop("metrics")
    message = error_of(data)
    assert message.startswith("task card my_card.yaml: unknown key `metric` (did you mean `metrics`?)")
    assert "(1)" not in message  # one problem, one sentence


def test_an_unknown_source_key_names_the_dotted_path_and_the_closest_key():
    data = shipped("nq_5k")
    data["sources"]["nq_oracle"]["sha265"] = data["sources"]["nq_oracle"].pop("sha256")
    message = error_of(data)
    assert "unknown key `sources.nq_oracle.sha265` (did you mean `sources.nq_oracle.sha256`?)" in message
    assert "missing required key `sources.nq_oracle.sha256`" in message  # the typo also leaves the key missing
    assert message.startswith("task card my_card.yaml has 2 problems:")


def test_an_unknown_external_corpus_index_key_names_the_dotted_path():
    data = shipped("nq_open_dpr")
    data["external_corpus"]["indexes"]["lucene"]["document"] = data["external_corpus"]["indexes"]["lucene"].pop("documents")
    message = error_of(data)
    assert "unknown key `external_corpus.indexes.lucene.document` (did you mean `external_corpus.indexes.lucene.documents`?)" in message


@pytest.mark.parametrize(
    "edit, key, expected",
    [
        (lambda d: d["sources"]["nq_oracle"].update(sha256="abc"), "sources.nq_oracle.sha256", "a sha256"),
        (lambda d: d["sources"]["nq_oracle"].update(sha256=d["sources"]["nq_oracle"]["sha256"].upper()),
         "sources.nq_oracle.sha256", "64 lowercase hex digits"),
        (lambda d: d["sources"]["nq_oracle"].update(optional="yes"), "sources.nq_oracle.optional", "true or false"),
        (lambda d: d["sources"]["nq_oracle"].update(path=3), "sources.nq_oracle.path", "a string"),
        (lambda d: d.update(version="1"), "version", "a positive integer"),
        (lambda d: d.update(version=True), "version", "a positive integer"),
        (lambda d: d.update(k=[1, "5"]), "k[1]", "a positive integer"),
        (lambda d: d.update(k=[]), "k", "a non-empty list of positive integers"),
        (lambda d: d.update(k=5), "k", "a non-empty list of positive integers"),
        (lambda d: d.update(splits="test"), "splits", "a non-empty list of split names"),
        (lambda d: d["splits"].update(dev="10%"), "splits.dev", "a ratio"),
        (lambda d: d.update(build=[1]), "build", "a mapping"),
        (lambda d: d.update(description=["a"]), "description", "a string"),
        (lambda d: d.update(name="a/b"), "name", "no slash"),
        (lambda d: d.update(sources={"nq_oracle": "raw/x.gz"}), "sources.nq_oracle", "a mapping"),
    ],
)
def test_a_wrong_type_names_the_dotted_key_and_what_is_expected(edit, key, expected):
    data = shipped("nq_5k")
    edit(data)
    message = error_of(data)
    assert message.startswith("task card my_card.yaml: ")
    assert f"`{key}` must be" in message and expected in message


def test_external_corpus_types_and_source_names():
    data = shipped("nq_open_dpr")
    data["external_corpus"]["passages"] = "21M"
    data["external_corpus"]["indexes"]["dense"]["source"] = "dense_indx"
    message = error_of(data)
    assert "`external_corpus.passages` must be a positive integer, not '21M' (str)" in message
    assert "`external_corpus.indexes.dense.source` names no source of this card: 'dense_indx' (did you mean 'dense_index'?)" in message


def test_cross_checks_default_split_and_optional_corpus():
    data = shipped("mirage")
    data["default_split"] = "tset"
    data["optional_corpus"] = ["doc_pol"]
    message = error_of(data)
    assert "`default_split` is 'tset', not one of the card's splits (did you mean 'test'?): train, dev, test" in message
    assert "`optional_corpus[0]` names no source of this card: 'doc_pol' (did you mean 'doc_pool'?)" in message


@pytest.mark.parametrize("key", [k.name for k in CARD_KEYS if k.required])
def test_a_missing_required_key_is_named(key):
    data = shipped("musique")
    del data[key]
    assert f"missing required key `{key}`" in error_of(data)


@pytest.mark.parametrize("key", [k.name for k in SOURCE_KEYS if k.required])
def test_a_missing_required_source_key_is_named(key):
    data = shipped("musique")
    del data["sources"]["musique_corpus"][key]
    assert error_of(data).startswith(f"task card my_card.yaml: missing required key `sources.musique_corpus.{key}`")


def test_a_card_that_is_not_a_mapping():
    assert "expected a mapping at the top level" in error_of(["name", "x"])


def test_a_bad_metrics_entry_errors_naming_the_family_and_the_closest_one():
    data = shipped("hotpotqa_5k")
    data["metrics"] = ["retrieval", "answers", "evidence"]
    message = error_of(data)
    assert "`metrics[1]` must name a metric family, not 'answers' (str) (did you mean 'answer'?)" in message
    assert "the families: answer, efficiency, evidence, retrieval" in message
    data["metrics"] = "retrieval"
    assert "`metrics` must be a list of metric families" in error_of(data)
    data["metrics"] = ["recall@5"]
    assert "`metrics[0]` must name a metric family, not 'recall@5'" in error_of(data)


def test_metric_families_are_the_metrics_core_metrics_registers():
    from rag_bench_plugins import core_metrics

    registered = []
    core_metrics.register_metrics(register=lambda name, metric: registered.append(name))
    assert set(registered) == set(METRIC_FAMILIES)


def test_a_minimal_local_card_validates_and_a_typo_in_one_names_the_file(tmp_path):
    card = {"name": "mini", "version": 1, "builder": "jsonl", "splits": ["test"], "k": [1, 2],
            "sources": {s: {"path": f"{s}.jsonl", "sha256": "0" * 64} for s in ("corpus", "queries")}}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card), encoding="utf-8")
    definition = definition_from_card_file(path)
    assert definition.card.default_split == "test" and definition.card.k == (1, 2)
    card["buider"] = card.pop("builder")
    path.write_text(yaml.safe_dump(card), encoding="utf-8")
    with pytest.raises(RagBenchError, match=rf"task card {path}: unknown key `buider` \(did you mean `builder`\?\)"):
        definition_from_card_file(path)


def test_the_default_where_is_the_card_name():
    data = shipped("musique")
    data["kk"] = [1]
    assert error_of_default(data).startswith("task card musique: unknown key `kk` (did you mean `k`?)")


def error_of_default(data) -> str:
    with pytest.raises(RagBenchError) as info:
        TaskCard.from_dict(data)
    return str(info.value)


def test_the_docs_show_the_schema_as_declared():
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- card-schema:")
    start = text.index("\n", start) + 1
    end = text.index("<!-- /card-schema -->")
    assert text[start:end] == schema_markdown(), (
        "docs/TASK_CARDS.md's card schema differs from rag_bench.task_schema: paste schema_markdown()'s output between "
        "the card-schema markers")

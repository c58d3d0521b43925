"""The task card schema: every key a card may have, its type, whether it is required, and what it means.

One declaration serves three purposes: `validate_card` checks a card against
it (``TaskCard.from_dict`` calls it, so every card does: the shipped ones, a
card file given by path, a plugin's), `schema_markdown` renders it as the
"Card schema" section of docs/TASK_CARDS.md (a test keeps the two equal), and
the descriptions say what each key is for.

A card is closed: a key the schema does not declare is an error that names
the closest declared key (a typo such as ``metric:`` or ``sha265:`` never
passes silently). Builder settings (``build``) are the one open mapping: each
builder reads its own keys. Every problem found is reported in one
`RagBenchError` that names the card and each key by its dotted path
(``sources.nq_oracle.sha256``, ``metrics[1]``).

``metrics`` is informational, and validated: it declares which of the
standard metric families (`METRIC_FAMILIES`, the metrics the built-in
``core_metrics`` plugin registers) the task's gold data supports. A run
computes every always-on metric whatever the card says; a family the task has
no gold for yields no values (nq_open_dpr has no gold evidence, so no
``evidence`` scores, and its card leaves ``evidence`` out). Judges and
provider-specific metrics are chosen per run (``--judges``) or by the
provider, not by the task, so a card does not name them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .errors import RagBenchError

#: The standard metric families a card's ``metrics`` may name: the metric names the built-in
#: ``core_metrics`` plugin registers (a test keeps the two equal), each with the gold it needs.
METRIC_FAMILIES: dict[str, str] = {
    "retrieval": "recall@k, hit@k, all_gold@k, mrr, ndcg@10 (need gold passage ids); answer_recall@k (needs answers)",
    "answer": "em, f1, match of the reader's answer (need gold answers)",
    "evidence": "evidence_rougeL, evidence_rougeL_max@5 (need gold evidence sentences)",
    "efficiency": "latency, preparation time, footprint, peak memory (need nothing from the task)",
}

#: The default retrieval cut-offs of a card that gives no ``k``.
DEFAULT_K = (1, 5, 20)

Problems = list[str]
_APOS = "'"
#: check(value, dotted path, problems, the whole card): append a problem for each thing wrong with `value`.
Check = Callable[[Any, str, Problems, Mapping[str, Any]], None]


@dataclass(frozen=True)
class Type:
    """A value's expected type: `label` says it in docs and messages, `check` tests it."""

    label: str
    check: Check


@dataclass(frozen=True)
class Key:
    """One key of a card section: its name, type, whether it is required, and a one-line description."""

    name: str
    type: Type
    required: bool
    description: str


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _join(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


def _hint(name: str, known: Sequence[str], path: str = "", quote: str = "`") -> str:
    """" (did you mean `closest`?)" for the declared name closest to `name` (difflib), "" when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {quote}{_join(path, close[0])}{quote}?)" if close else ""


def _simple(label: str, ok: Callable[[Any], bool]) -> Type:
    def check(value: Any, path: str, problems: Problems, card: Mapping[str, Any]) -> None:
        if not ok(value):
            problems.append(f"`{path}` must be {label}, not {_show(value)}")

    return Type(label, check)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


STRING = _simple("a string", lambda v: isinstance(v, str))
POSITIVE_INT = _simple("a positive integer", lambda v: _is_int(v) and v > 0)
BOOLEAN = _simple("true or false", lambda v: isinstance(v, bool))
SHA256 = _simple("a sha256 (64 lowercase hex digits) or null",
                 lambda v: v is None or (isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None))
MD5 = _simple("an md5 (32 hex digits) or null",
              lambda v: v is None or (isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]{32}", v) is not None))
OPEN_MAPPING = _simple("a mapping", lambda v: isinstance(v, Mapping))
TASK_NAME = _simple("a non-empty string with no slash (it names the prepared folder)",
                    lambda v: isinstance(v, str) and v.strip() == v and v != "" and not re.search(r"[/\\]", v))


def _list_of(label: str, item: Type, non_empty: bool = False) -> Type:
    def check(value: Any, path: str, problems: Problems, card: Mapping[str, Any]) -> None:
        if not isinstance(value, (list, tuple)) or (non_empty and not value):
            problems.append(f"`{path}` must be {label}, not {_show(value)}")
            return
        for i, element in enumerate(value):
            item.check(element, f"{path}[{i}]", problems, card)

    return Type(label, check)


def _card_sources(card: Mapping[str, Any]) -> list[str]:
    sources = card.get("sources")
    return [str(name) for name in sources] if isinstance(sources, Mapping) else []


def _source_name(value: Any, path: str, problems: Problems, card: Mapping[str, Any]) -> None:
    names = _card_sources(card)
    if not isinstance(value, str):
        problems.append(f"`{path}` must be the name of one of the card's sources, not {_show(value)}")
    elif value not in names:
        problems.append(f"`{path}` names no source of this card: {value!r}{_hint(value, names, quote=_APOS)}; "
                        f"its sources: {', '.join(names) or 'none'}")


SOURCE_NAME = Type("the name of one of the card's sources", _source_name)


def _metric_family(value: Any, path: str, problems: Problems, card: Mapping[str, Any]) -> None:
    families = sorted(METRIC_FAMILIES)
    if not isinstance(value, str) or value not in METRIC_FAMILIES:
        hint = _hint(value, families, quote=_APOS) if isinstance(value, str) else ""
        problems.append(f"`{path}` must name a metric family, not {_show(value)}{hint}; "
                        f"the families: {', '.join(families)}")


METRIC_FAMILY = Type("a metric family", _metric_family)


def split_names(value: Any) -> tuple[str, ...]:
    """The split names of a card's `splits` (a list of names or a mapping name -> ratio); () when it is neither."""
    return tuple(value) if isinstance(value, (Mapping, list, tuple)) else ()


def _splits(value: Any, path: str, problems: Problems, card: Mapping[str, Any]) -> None:
    label = "a non-empty list of split names or mapping of split name to ratio"
    if not isinstance(value, (Mapping, list, tuple)) or not value:
        problems.append(f"`{path}` must be {label}, not {_show(value)}")
        return
    names = list(value)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            where = f"`{path}[{i}]`" if not isinstance(value, Mapping) else f"a key of `{path}`"
            problems.append(f"{where} must be a non-empty split name, not {_show(name)}")
    repeated = sorted({str(n) for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"`{path}` names a split more than once: {', '.join(repeated)}")
    if isinstance(value, Mapping):
        for name, ratio in value.items():
            if not _is_number(ratio) or ratio < 0:
                problems.append(f"`{_join(path, name)}` must be a ratio (a number >= 0), not {_show(ratio)}")


SPLITS = Type("a list of split names, or a mapping split name -> ratio", _splits)


def _default_split(value: Any, path: str, problems: Problems, card: Mapping[str, Any]) -> None:
    names = [str(n) for n in split_names(card.get("splits"))]
    if not isinstance(value, str):
        problems.append(f"`{path}` must be one of the card's splits, not {_show(value)}")
    elif names and value not in names:
        problems.append(f"`{path}` is {value!r}, not one of the card's splits{_hint(value, names, quote=_APOS)}: "
                        f"{', '.join(names)}")


DEFAULT_SPLIT = Type("one of the card's splits", _default_split)


def _section(label: str, keys: Callable[[], Sequence[Key]], what: str) -> Type:
    """A mapping with the declared `keys` and no others."""

    def check(value: Any, path: str, problems: Problems, card: Mapping[str, Any]) -> None:
        if not isinstance(value, Mapping):
            problems.append(f"`{path}` must be {label}, not {_show(value)}")
            return
        walk(value, keys(), path, what, problems, card)

    return Type(label, check)


def _named_sections(label: str, keys: Callable[[], Sequence[Key]], what: str, non_empty: bool = False) -> Type:
    """A mapping name -> section (sources by name, indexes by kind), each section with the declared `keys`."""

    def check(value: Any, path: str, problems: Problems, card: Mapping[str, Any]) -> None:
        if not isinstance(value, Mapping) or (non_empty and not value):
            problems.append(f"`{path}` must be {label}, not {_show(value)}")
            return
        for name, section in value.items():
            where = _join(path, name)
            if not isinstance(name, str) or not name:
                problems.append(f"`{where}`: a name here must be a non-empty string, not {_show(name)}")
            elif not isinstance(section, Mapping):
                problems.append(f"`{where}` must be a mapping ({what}), not {_show(section)}")
            else:
                walk(section, keys(), where, what, problems, card)

    return Type(label, check)


SOURCE_KEYS: tuple[Key, ...] = (
    Key("path", STRING, True,
        "where the file lies under `$RAG_BENCH_DATA_DIR` (or an absolute path; relative to the card for a card file "
        "given by path)"),
    Key("sha256", SHA256, True,
        "checksum of the file as stored; null: unknown, not verified (the sha256 of the copy used is recorded in the "
        "prepared task)"),
    Key("url", STRING, False,
        "the original at a pinned commit, downloaded and verified when no local copy matches; empty or absent: "
        "never downloaded"),
    Key("content_sha256", SHA256, False,
        "checksum of the decompressed content (equals the original download when the local copy was gzip'd)"),
    Key("md5", MD5, False, "the publisher's own checksum (pyserini's prebuilt indexes publish only md5): the file must "
        "match it too"),
    Key("license", STRING, False, "the license of the file's content"),
    Key("optional", BOOLEAN, False, "the task builds without this file (default false)"),
    Key("help", STRING, False, "what to do when the file is missing: where to get it and where to put it"),
)

INDEX_KEYS: tuple[Key, ...] = (
    Key("source", SOURCE_NAME, True, "the card's source that holds the index archive"),
    Key("documents", POSITIVE_INT, False, "how many documents the index holds (checked once it is unpacked)"),
    Key("query_encoder", OPEN_MAPPING, False, "dense: how queries are encoded (`kind`, `model`)"),
    Key("texts", STRING, False, "dense: the index kind whose stored documents give the passage texts (`lucene`)"),
)

EXTERNAL_CORPUS_KEYS: tuple[Key, ...] = (
    Key("passages", POSITIVE_INT, True, "how many passages the corpus holds"),
    Key("indexes", _named_sections("a non-empty mapping index kind -> index", lambda: INDEX_KEYS,
                                   "an external corpus index", non_empty=True), True,
        "the prebuilt indexes by kind (`lucene`, `dense`), fetched by the providers that search them, never by "
        "`rag-bench prepare`"),
    Key("description", STRING, False, "what the corpus is"),
)

CARD_KEYS: tuple[Key, ...] = (
    Key("name", TASK_NAME, True, "the task's name: `--task NAME`, the prepared folder `tasks/NAME/vVERSION` and every "
        "run manifest"),
    Key("version", POSITIVE_INT, True, "the card's version: bump it whenever the built task changes (each version is "
        "prepared apart)"),
    Key("description", STRING, False, "what the task is, in a paragraph (`rag-bench tasks` shows its start)"),
    Key("construction", STRING, False, "how corpus, questions, gold and splits are built from the sources, precisely "
        "enough to rebuild them"),
    Key("sources", _named_sections("a mapping source name -> source", lambda: SOURCE_KEYS, "a source"), True,
        "the raw input files by name, each verified by its checksum before use"),
    Key("splits", SPLITS, True, "the task's splits: a list of names, or a mapping name -> share of the questions for "
        "builders that assign splits"),
    Key("default_split", DEFAULT_SPLIT, False, "the split a run scores without `--split` (default: `test` when there "
        "is one, else the first split)"),
    Key("k", _list_of("a non-empty list of positive integers", POSITIVE_INT, non_empty=True), False,
        f"the default retrieval cut-offs (default {list(DEFAULT_K)}); `-k` overrides them"),
    Key("metrics", _list_of("a list of metric families", METRIC_FAMILY), False,
        "informational: the metric families the task's gold data supports; a run computes every always-on metric "
        "whatever it says"),
    Key("build", OPEN_MAPPING, False, "the builder's settings (`card.params()`); their keys are the builder's own"),
    Key("builder", STRING, False, "`jsonl` for a card file given by path (`--task path/to/card.yaml`, BEIR-like "
        "JSONL sources `corpus` and `queries`)"),
    Key("optional_corpus", _list_of("a list of source names", SOURCE_NAME), False,
        "the optional sources the corpus comes from: without them it is empty and only closed-book providers run"),
    Key("external_corpus", _section("a mapping", lambda: EXTERNAL_CORPUS_KEYS, "an external corpus"), False,
        "a corpus too large to load, searched in prebuilt indexes that sources hold"),
)


def walk(data: Mapping[str, Any], keys: Sequence[Key], path: str, what: str, problems: Problems,
         card: Mapping[str, Any]) -> None:
    """Check `data` (the section at `path`) against `keys`: unknown keys, missing required keys, each value's type."""
    known = [key.name for key in keys]
    for name in data:
        if name not in known:
            problems.append(f"unknown key `{_join(path, name)}`{_hint(str(name), known, path)}; "
                            f"{what} may have: {', '.join(known)}")
    for key in keys:
        where = _join(path, key.name)
        if key.name in data:
            key.type.check(data[key.name], where, problems, card)
        elif key.required:
            problems.append(f"missing required key `{where}` ({key.type.label}: {key.description})")


def card_problems(data: Any) -> list[str]:
    """Everything wrong with the card `data` (parsed YAML), one line each; [] for a valid card."""
    if not isinstance(data, Mapping):
        return [f"expected a mapping at the top level, not {_show(data)}"]
    problems: Problems = []
    walk(data, CARD_KEYS, "", "a task card", problems, data)
    return problems


def validate_card(data: Any, where: str) -> None:
    """Raise one RagBenchError naming the card `where` and every problem `card_problems` finds."""
    problems = card_problems(data)
    if not problems:
        return
    if len(problems) == 1:
        raise RagBenchError(f"task card {where}: {problems[0]}")
    listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
    raise RagBenchError(f"task card {where} has {len(problems)} problems: {listed}")


def _table(keys: Sequence[Key]) -> list[str]:
    rows = ["| key | type | required | what it is |", "| --- | --- | --- | --- |"]
    for key in keys:
        rows.append(f"| `{key.name}` | {key.type.label} | {'yes' if key.required else ''} | {key.description} |")
    return rows


def schema_markdown() -> str:
    """The schema as the markdown that docs/TASK_CARDS.md holds between its card-schema markers."""
    lines = ["Top level:", "", *_table(CARD_KEYS), "",
             "Each entry of `sources` (`sources.NAME.KEY`):", "", *_table(SOURCE_KEYS), "",
             "`external_corpus`:", "", *_table(EXTERNAL_CORPUS_KEYS), "",
             "Each entry of `external_corpus.indexes` (`external_corpus.indexes.KIND.KEY`):", "",
             *_table(INDEX_KEYS), "",
             "The metric families `metrics` may name:", "",
             "| family | scores |", "| --- | --- |",
             *(f"| `{name}` | {text} |" for name, text in METRIC_FAMILIES.items())]
    return "\n".join(lines) + "\n"

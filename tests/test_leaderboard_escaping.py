"""Every run-derived string on the site is escaped, and no secret reaches a page.

A real run is made with a provider whose name, evidence and reader answer
carry HTML/JavaScript payloads and a reader whose settings hold an API key;
then every page is parsed and the only scripts and handlers must be our own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rag_bench import hookimpl
from rag_bench.leaderboard.collect import collect_entries
from rag_bench.leaderboard.site import build_site
from rag_bench.plugins import register_plugin, reset_for_tests
from rag_bench.provider import EvidenceProvider
from rag_bench.reader import Reader
from rag_bench.runner import RunConfig, execute
from rag_bench.types import Hit, ProvidedEvidence, ReaderAnswer

HOSTILE_PROVIDER = "<img src=x onerror=window.__pwned='provider'>"
HOSTILE_EVIDENCE = "<script>window.__pwned = 'evidence';</script>"
HOSTILE_ANSWER = "<img src=x onerror=\"window.__pwned='answer'\">"
HOSTILE_QUESTION = "\"><svg onload=window.__pwned='question'>"
SECRET = "sk-test-0123456789abcdefSECRET"
LIMIT = 8


@dataclass(frozen=True)
class KeyedParams:
    api_key: str = ""


class HostileProvider(EvidenceProvider):
    """Returns the first passage's id with evidence that is a script."""

    def prepare(self, task, workdir: Path) -> None:
        self.doc_id = task.corpus[0].doc_id

    def provide(self, questions, k):
        return [ProvidedEvidence(hits=[Hit(self.doc_id, 1.0)], evidence=[HOSTILE_EVIDENCE]) for _ in questions]


class HostileReader(Reader):
    """Answers with an image tag whose error handler runs script; holds a key in its settings."""

    Params = KeyedParams

    def read(self, questions, evidence):
        return [ReaderAnswer(answer=HOSTILE_ANSWER) for _ in questions]


class HostilePlugin:
    @hookimpl
    def register_providers(self, register):
        register(HOSTILE_PROVIDER, HostileProvider)

    @hookimpl
    def register_readers(self, register):
        register("hostile_reader", HostileReader)


def make_hostile_runs(runs_dir: Path) -> None:
    """A real run of the hostile provider and reader, plus a hostile question text in its records."""
    register_plugin(HostilePlugin(), "hostile_test_plugin")
    try:
        argv = ["rag-bench", "run", "--provider", HOSTILE_PROVIDER, "--task", "nq_5k", "--limit", str(LIMIT),
                "--reader", "hostile_reader", "-R", f"api_key={SECRET}"]
        result = execute(RunConfig(provider=HOSTILE_PROVIDER, task="nq_5k", limit=LIMIT, reader="hostile_reader",
                                   reader_params={"api_key": SECRET}, runs_dir=runs_dir), argv=argv)
    finally:
        reset_for_tests()
    records = result.path / "records.jsonl"
    lines = records.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["question"] = HOSTILE_QUESTION
    records.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n", encoding="utf-8")


class ActiveContent(HTMLParser):
    """Collects every script element, inline handler attribute and javascript: URL of a page."""

    def __init__(self):
        super().__init__()
        self.scripts: list[tuple[str | None, str]] = []
        self.handlers: list[str] = []
        self._in_script: str | None = None
        self._script_body: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            self._in_script = dict(attrs).get("src")
            self._script_body = []

    def handle_data(self, data):
        if self._in_script is not None or self.tags and self.tags[-1] == "script":
            self._script_body.append(data)

    def handle_endtag(self, tag):
        if tag == "script":
            self.scripts.append((self._in_script, "".join(self._script_body)))
            self._in_script = None


@pytest.fixture(scope="module")
def hostile_site(nq_5k, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    make_hostile_runs(root / "runs")
    return build_site(collect_entries(root / "runs"), root / "site")


def test_no_run_derived_script_or_handler_reaches_any_page(hostile_site):
    pages = [hostile_site.index, *hostile_site.pages]
    assert len(hostile_site.pages) == 1
    for path in pages:
        parser = ActiveContent()
        parser.feed(path.read_text(encoding="utf-8"))
        assert parser.handlers == [], path
        assert [src for src, _ in parser.scripts] == [("" if path == hostile_site.index else "../") + "leaderboard.js"], path
        assert all(body.strip() == "" for _, body in parser.scripts), path
        assert "svg" not in parser.tags and parser.tags.count("img") == len(hostile_site.plots) * (path == hostile_site.index)


def test_payloads_are_shown_as_text(hostile_site):
    page = hostile_site.pages[0].read_text(encoding="utf-8")
    index = hostile_site.index.read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__pwned = &#x27;evidence&#x27;;&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;window.__pwned=&#x27;answer&#x27;&quot;&gt;" in page
    assert "&quot;&gt;&lt;svg onload=window.__pwned=&#x27;question&#x27;&gt;" in page
    assert "&lt;img src=x onerror=window.__pwned=&#x27;provider&#x27;&gt;" in index
    # The page file name is derived from the provider name but contains none of its markup.
    assert "<" not in hostile_site.pages[0].name and ">" not in hostile_site.pages[0].name


def test_no_secret_appears_on_any_page(hostile_site):
    for path in [hostile_site.index, *hostile_site.pages]:
        text = path.read_text(encoding="utf-8")
        assert SECRET not in text, path
    page = hostile_site.pages[0].read_text(encoding="utf-8")
    assert "api_key=[redacted]" in page and "&quot;api_key&quot;: &quot;[redacted]&quot;" in page


def test_pages_forbid_inline_scripts(hostile_site):
    """Defence in depth: even a missed escape could not run inline script."""
    for path in [hostile_site.index, *hostile_site.pages]:
        text = path.read_text(encoding="utf-8")
        assert "Content-Security-Policy" in text and "script-src 'self'" in text

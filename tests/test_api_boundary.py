"""The plugin boundary (issue 32): plugins import rag-bench only through `rag_bench.api`, never each other, and no
module of rag_bench or of a plugin takes part in an import cycle.

Imports are read with `ast`, at module level and inside functions alike (a lazy import is still a dependency).
Imports under ``if TYPE_CHECKING:`` count in the cycle check too: they never run, but a type-only circle still
ties two modules together (a reader cannot understand one without the other).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path
from typing import Iterator

import pytest

import rag_bench.api as api

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_SRC = REPO / "examples" / "rag-bench-example-plugin" / "src"
#: Import name -> folder, as installed (setup.py maps plugins/ to its name).
TREES = {
    "rag_bench": REPO / "rag_bench",
    "rag_bench_plugins": REPO / "plugins",
    "rag_bench_example": EXAMPLE_SRC / "rag_bench_example",
}
API = "rag_bench.api"


@dataclasses.dataclass(frozen=True)
class Import:
    """One imported module as a module names it: `target` is absolute; `names` what a ``from`` import takes."""

    module: str
    target: str
    names: tuple[str, ...]
    line: int


def modules(trees: dict[str, Path]) -> dict[str, Path]:
    """Every module under the trees by import name (a package by its own name, from its __init__.py)."""
    out = {}
    for top, folder in trees.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """Every import statement in `path` (module level and inside functions), resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level - 1 <= len(package) else []
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield Import(module, target, tuple(a.name for a in node.names), node.lineno)


def plugin_of(module: str) -> str | None:
    """The plugin a module belongs to: ``rag_bench_plugins.<name>`` or the example's top package."""
    parts = module.split(".")
    if parts[0] == "rag_bench_plugins":
        return ".".join(parts[:2]) if len(parts) > 1 else parts[0]
    if parts[0] == "rag_bench_example":
        return parts[0]
    return None


def boundary_violations(all_modules: dict[str, Path], root: Path = REPO) -> list[str]:
    """`file:line: what` for each plugin import of a rag_bench module other than rag_bench.api, or of another
    plugin (a relative import that climbs out of its own plugin included)."""
    out = []
    for module, path in all_modules.items():
        mine = plugin_of(module)
        if mine is None:
            continue
        for imp in imports_of(module, path):
            top = imp.target.split(".")[0]
            why = None
            if top == "rag_bench" and imp.target != API:
                why = f"imports {imp.target}" + (f" ({', '.join(imp.names)})" if imp.names else "") + f"; use {API}"
            elif top in ("rag_bench_plugins", "rag_bench_example"):
                named = [t for t in (f"{imp.target}.{name}" for name in imp.names) if t in all_modules]
                if any(plugin_of(t) != mine for t in named or [imp.target]):
                    why = f"imports another plugin ({imp.target}); share code through {API}"
            if why:
                out.append(f"{path.relative_to(root)}:{imp.line}: {why}")
    return out


def import_graph(all_modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of `all_modules` it imports (a ``from P import name`` counts P.name when that is a
    module, else P); ``if TYPE_CHECKING:`` imports count like the others."""
    graph: dict[str, set[str]] = {}
    for module, path in all_modules.items():
        edges = set()
        for imp in imports_of(module, path):
            for target in [f"{imp.target}.{name}" for name in imp.names] or [imp.target]:
                if target not in all_modules:
                    target = imp.target
                while target not in all_modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in all_modules and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(start: str) -> None:  # iterative: the graph is deep enough to matter for recursion
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, component) for component in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component (the modules of the
    component it does not pass through are in other cycles with it)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    return paths[node] + [start]
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    nxt.append(child)
        frontier = nxt
    return sorted(component)


# ---------------------------------------------------------------------------------------------------- the checks


def test_plugins_and_the_example_import_rag_bench_only_through_the_api():
    found = modules(TREES)
    assert any(m.startswith("rag_bench_plugins.") for m in found) and "rag_bench_example.provider" in found
    violations = boundary_violations(found)
    assert not violations, "plugins must import only rag_bench.api:\n" + "\n".join(violations)


def test_no_module_of_rag_bench_or_a_plugin_is_in_an_import_cycle():
    found = cycles(import_graph(modules(TREES)))
    assert not found, "import cycles (move what both sides need into a module of its own):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found)


def test_core_never_imports_a_plugin_or_the_api():
    """The api sits on top of core: core modules import neither it nor a plugin (the plugin manager finds plugins
    through entry points), so there is one direction only."""
    found = modules(TREES)
    wrong = [f"{path.relative_to(REPO)}:{imp.line}: imports {imp.target}"
             for module, path in found.items() if module.startswith("rag_bench.") and module != API
             for imp in imports_of(module, path)
             if imp.target.split(".")[0] in ("rag_bench_plugins", "rag_bench_example") or imp.target == API
             or (imp.target == "rag_bench" and "api" in imp.names)]
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """A plugin importing another plugin and the runner, a relative climb into a sibling plugin, and a lazy
    import cycle and a type-only one are all reported."""
    core, plugins = tmp_path / "core", tmp_path / "plugins"
    files = {
        core / "__init__.py": "",
        core / "a.py": "def f():\n    from .b import g\n",
        core / "b.py": "from . import a\n",
        core / "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import x\n",
        core / "d.py": "from .c import y\n",
        plugins / "__init__.py": "",
        plugins / "one" / "__init__.py": "from rag_bench.api import hookimpl\nfrom .inner import z\n",
        plugins / "one" / "inner.py": "def f():\n    from rag_bench.runner import build_provider\n",
        plugins / "two" / "__init__.py": "from rag_bench_plugins.one.inner import z\nfrom ..one import inner\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    found = modules({"rag_bench": core, "rag_bench_plugins": plugins})
    violations = boundary_violations(found, root=tmp_path)
    assert any("one/inner.py:2: imports rag_bench.runner" in v for v in violations)
    assert sum("two/__init__.py" in v and "another plugin" in v for v in violations) == 2
    assert not any("one/__init__.py" in v for v in violations)
    assert sorted(cycles(import_graph(found))) == [["rag_bench.a", "rag_bench.b", "rag_bench.a"],
                                                   ["rag_bench.c", "rag_bench.d", "rag_bench.c"]]


def test_every_api_name_is_exported_documented_and_unique():
    names = api.__all__
    assert len(names) == len(set(names))
    assert [n for n in names if not hasattr(api, n)] == []
    undocumented = [n for n in names if f"`{n}`" not in api.__doc__]
    assert not undocumented, f"add these to rag_bench.api's docstring: {undocumented}"
    no_docstring = [n for n in names if (inspect.isclass(getattr(api, n)) or inspect.isfunction(getattr(api, n)))
                    and not inspect.getdoc(getattr(api, n))]
    assert not no_docstring, f"public types and functions need docstrings: {no_docstring}"
    public = {n for n, v in vars(api).items() if not n.startswith("_") and not inspect.ismodule(v)} - {"annotations"}
    assert public == set(names), f"in the module but not in __all__: {sorted(public - set(names))}"


def test_constants_plugins_share_without_importing_each_other_agree():
    """hybrid's default encoder is dense's; llm_memory's hard negatives use the bm25 provider's defaults."""
    from rag_bench_plugins.bm25 import BM25Params
    from rag_bench_plugins.dense import DenseParams
    from rag_bench_plugins.hybrid import HybridParams

    assert HybridParams().model == DenseParams().model
    bm25 = BM25Params()
    assert (bm25.k1, bm25.b, bm25.stemmer, bm25.stopwords) == (api.BM25_K1, api.BM25_B, api.BM25_STEMMER,
                                                               api.BM25_STOPWORDS)


# ------------------------------------------------------------------------------- a third-party retriever on the api


class _TitleWords(api.Retriever):
    """A provider a third party could write with rag_bench.api alone: passages ranked by question words in titles."""

    description = "test: title word overlap"

    def prepare(self, task, workdir: Path) -> None:
        self.store = api.PassageStore(task.corpus[:300], evidence_bytes=40)
        self.titles = [set(p.title.lower().split()) for p in self.store.passages]

    def search(self, queries, k):
        out = []
        for query in queries:
            words = set(query.lower().split())
            scored = sorted(((len(words & title), -i) for i, title in enumerate(self.titles)), reverse=True)[:k]
            out.append([(-neg, float(score)) for score, neg in scored])
        return out

    def index_bytes(self) -> int:
        return sum(len(" ".join(t).encode()) for t in self.titles)


class _Plugin:
    @api.hookimpl
    def register_providers(self, register):
        register("title_words", _TitleWords)


@pytest.fixture()
def title_words():
    from rag_bench.plugins import register_plugin, reset_for_tests

    register_plugin(_Plugin(), "title_words_test")
    yield
    reset_for_tests()


def test_a_retriever_built_on_the_api_alone_runs_through_the_registry(title_words, nq_5k):
    provider = api.build_provider("title_words", {})
    info = api.prepare_provider("title_words", provider, nq_5k)
    assert Path(info["workdir"]).is_dir()
    questions = nq_5k.split("test")[:4]
    provided = provider.provide(questions, 5)
    assert [len(p.hits) for p in provided] == [5] * 4
    store = provider.store
    for evidence in provided:
        positions = [list(store.doc_ids).index(h.doc_id) for h in evidence.hits]
        assert evidence.evidence == [store.evidence[i] for i in positions]
        assert all(len(text.encode()) <= 40 for text in evidence.evidence)
    footprint = provider.footprint()
    assert set(footprint) == {"index", "text_store"} and footprint["text_store"] == store.stored_bytes
    assert store.whole_bytes > store.stored_bytes
    from rag_bench.provider import can_write

    assert not can_write(provider)  # a Retriever is writable only when it overrides write()

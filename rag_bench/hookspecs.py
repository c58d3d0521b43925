"""Hook specifications: the whole plugin interface of rag-bench.

A plugin is a module (or object) with functions named after these hooks and
decorated with ``rag_bench.api.hookimpl``, exposed through the ``rag_bench``
entry-point group in the plugin distribution's ``pyproject.toml``::

    [project.entry-points.rag_bench]
    my_plugin = "my_package.plugin"

The built-in providers, tasks, readers and metrics are registered exactly
this way, from ``rag_bench_plugins``. Plugins import everything they use of
rag-bench (the types and base classes named below) from ``rag_bench.api``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("rag_bench")
hookimpl = pluggy.HookimplMarker("rag_bench")


@hookspec
def register_providers(register):
    """Register evidence providers.

    Call ``register(name, provider_class)`` once per provider, where
    `provider_class` subclasses ``rag_bench.api.EvidenceProvider`` (or
    ``rag_bench.api.Retriever`` for a provider that hands over stored passages).
    `name` is what users pass to ``rag-bench run --provider NAME``; the
    class's `description` is what ``rag-bench plugins`` shows beside it.
    The harness calls ``prepare``, ``metadata``, ``provide(questions, k)``
    (with ``evidence_k=`` the reader depth where ``provide`` declares it),
    ``footprint`` and ``close``; see ``EvidenceProvider`` and docs/PLUGINS.md.

    Optional capability, no extra hook: a provider class that overrides
    ``write(passages, steps=None) -> WriteCost`` can take new passages into
    its prepared state (an index insert, a memory write), and
    ``rag-bench write-curve`` measures it (new passages' quality against a
    provider prepared with them, old passages' retention, seconds and bytes
    per passage). Set ``write_takes_steps = True`` when `write` optimises for
    a number of steps. Providers without it are reported as "cannot write".
    """


@hookspec
def register_tasks(register):
    """Register tasks.

    Call ``register(task_definition)`` with a ``rag_bench.api.TaskDefinition``:
    a task card (YAML, see ``plugins/builtin_tasks/nq_5k.yaml``) plus the function that builds
    the corpus and questions from the card's verified source files.
    """


@hookspec
def register_readers(register):
    """Register readers.

    Call ``register(name, reader_class)`` where `reader_class` subclasses
    ``rag_bench.api.Reader``; users pick it with ``--reader NAME``
    (``--reader NAME:MODEL`` passes MODEL as the `model` setting).
    """


@hookspec
def register_metrics(register):
    """Register metrics.

    Call ``register(name, metric)`` with a ``rag_bench.api.Metric``
    instance. Every registered metric runs on every finished run unless it
    is opt-in (``metric.opt_in = True``), which users select with
    ``--judges NAME,...``. A metric that does not apply to a run (no reader
    answers, no gold evidence) returns nothing for it. An LLM judge
    subclasses ``rag_bench.api.Judge``: it returns a ``Judgement`` per
    question that says which metrics it could not score and why (never a
    zero), and the runner keeps judgements so a re-run resumes.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``rag-bench`` command line.

    `cli` is the top-level ``click.Group``; decorate new commands with
    ``@cli.command()`` or add groups with ``cli.add_command(...)``.
    """

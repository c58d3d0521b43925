"""The plugin contract: everything a rag-bench plugin imports, from one module.

As Datasette's and LLM's plugins import ``hookimpl`` and the base classes
from ``datasette`` and ``llm``, a rag-bench plugin imports only from
``rag_bench.api``: the built-in plugins (``rag_bench_plugins.*``) do, the
example plugin does, and ``tests/test_api_boundary.py`` fails on any plugin
module that imports another ``rag_bench`` module or another plugin. The rest
of ``rag_bench`` (runner, registry, CLI, leaderboard, report) may change
between releases; the names here are the ones kept stable for plugins.

Hooks
    `hookimpl` marks a plugin's hook functions (``register_providers``,
    ``register_readers``, ``register_metrics``, ``register_tasks``,
    ``register_commands``; their docstrings in ``rag_bench.hookspecs`` are
    the reference).

Data
    `Passage`, `Question` (what a task holds), `Hit`, `ProvidedEvidence`
    (what a provider returns per question), `ReaderAnswer` (what a reader
    returns).

Errors
    `RagBenchError`: a mistake the user can fix; its message says how.

Settings
    A component's settings are a frozen dataclass in its `Params` (`NoParams`
    when it has none). `parse_params` turns ``KEY=VALUE`` strings into one,
    `parse_assignments` splits ``k=v,k=v`` pairs, `parse_steps` reads a
    ``--steps 0,10,25`` list, `params_to_dict` gives the JSON-ready dict that
    goes into manifests and cache keys.

Providers
    `EvidenceProvider` (the interface under test) and `WriteCost` (what its
    optional ``write`` reports). `Retriever` is the base of a provider that
    ranks stored passages: fill its `PassageStore` in ``prepare``, implement
    ``search`` and ``index_bytes``. `build_provider` and `prepare_provider`
    build another registered provider and prepare it in its own cache folder
    (how hybrid composes bm25 and dense without importing them).

Text and lexical search
    `document_text` (what an index holds for a passage) and
    `passage_evidence` (what the reader sees); the equal-bytes cut
    (`utf8_prefix`, `evidence_store`, `check_evidence_bytes`, `utf8_size`);
    `folder_bytes` (an index's size on disk). BM25 as the `bm25` provider
    tokenises: `bm25_tokenizer`, `BM25_K1`, `BM25_B`, `BM25_STEMMER`,
    `BM25_STOPWORDS`, and `bm25_neighbours` (top-k passages per query, in
    memory).

Readers and models
    `Reader`; the prompt (`PromptTemplate`, `load_template`,
    `clean_answer`); a local model's identity (`weights_sha256`,
    `loaded_revision`).

OpenAI-compatible endpoints (the `openai` reader and the judges)
    `EndpointParams` (the shared settings), `Endpoint`, `async_client` (with
    the disk cache of calls), `preflight`; failures: `describe_error`,
    `failure_kind`, `api_failure`, `EndpointDown`, `CircuitBreaker`;
    `CACHE_HEADER` marks a reply served from the cache.

Metrics and judges
    `Metric`, `Aggregate`, `RunSetup` (what a judge's preflight checks), `RunContext`
    (what scoring sees: the setup and the run's efficiency figures); an LLM judge subclasses `Judge` and
    returns a `Judgement` per question, with a `Failure` (kind
    `ENDPOINT_DOWN` when the breaker opened) for what it could not score.
    Scoring functions: `exact_match`, `f1_score`, `answer_match` (answers),
    `recall_at`, `hit_at`, `all_gold_at`, `mrr_at`, `ndcg_at`, `has_answer`
    (retrieval), `rouge_l` (evidence), `mean_with_ci`, `statistic_with_ci`
    (bootstrap intervals).

Tasks
    `Task` (what ``prepare`` receives), `TaskCard`, `TaskDefinition` (what
    ``register_tasks`` registers), `load_task` (a registered task, prepared);
    `gold_evidence`, `split_sentences` (gold evidence from passages);
    `index_settings`, `index_folder` (a task's prebuilt external index).

Files, caches and the console
    `cache_dir`, `exclusive` (a lock file), `fingerprint`, `open_text`,
    `read_jsonl`, `write_json_atomic`, `write_text_atomic`; `warn` (once per
    process), `table` (a plain-text table), `now`, `software` (what a record
    says about when and on what it ran).
"""

from __future__ import annotations

from .endpoint.client import Endpoint, EndpointParams, async_client, preflight
from .endpoint.faults import CircuitBreaker, EndpointDown, api_failure, describe_error, failure_kind
from .call_cache import CACHE_HEADER
from .errors import RagBenchError
from .external import index_folder, index_settings
from .gold_evidence import gold_evidence, split_sentences
from .hookspecs import hookimpl
from .hub import loaded_revision
from .jsonl import fingerprint, open_text, read_jsonl, write_json_atomic, write_text_atomic
from .judging import ENDPOINT_DOWN, Failure, Judge, Judgement
from .lexical import BM25_B, BM25_K1, BM25_STEMMER, BM25_STOPWORDS, bm25_neighbours, bm25_tokenizer
from .locks import exclusive
from .manifest import now, software
from .metric import Aggregate, Metric, RunContext, RunSetup
from .params import NoParams, params_to_dict, parse_assignments, parse_params, parse_steps
from .paths import cache_dir
from .plugins import warn
from .preparation import build_provider, prepare_provider
from .prompting import PromptTemplate, clean_answer, load_template
from .provider import EvidenceProvider, WriteCost
from .reader import Reader, weights_sha256
from .retriever import PassageStore, Retriever
from .scoring.answer import answer_match, exact_match, f1_score
from .scoring.bootstrap import mean_with_ci, statistic_with_ci
from .scoring.evidence import rouge_l
from .scoring.retrieval import all_gold_at, has_answer, hit_at, mrr_at, ndcg_at, recall_at
from .summary import table
from .task import Task, TaskCard, TaskDefinition
from .task_store import load_task
from .text import check_evidence_bytes, document_text, evidence_store, folder_bytes, passage_evidence, utf8_prefix, utf8_size
from .types import Hit, Passage, ProvidedEvidence, Question, ReaderAnswer

__all__ = [
    # hooks
    "hookimpl",
    # data
    "Hit", "Passage", "ProvidedEvidence", "Question", "ReaderAnswer",
    # errors
    "RagBenchError",
    # settings
    "NoParams", "params_to_dict", "parse_assignments", "parse_params", "parse_steps",
    # providers
    "EvidenceProvider", "PassageStore", "Retriever", "WriteCost", "build_provider", "prepare_provider",
    # text and lexical search
    "check_evidence_bytes", "document_text", "evidence_store", "folder_bytes", "passage_evidence", "utf8_prefix",
    "utf8_size", "BM25_B", "BM25_K1", "BM25_STEMMER", "BM25_STOPWORDS", "bm25_neighbours", "bm25_tokenizer",
    # readers and models
    "PromptTemplate", "Reader", "clean_answer", "load_template", "loaded_revision", "weights_sha256",
    # OpenAI-compatible endpoints
    "CACHE_HEADER", "CircuitBreaker", "Endpoint", "EndpointDown", "EndpointParams", "api_failure", "async_client",
    "describe_error", "failure_kind", "preflight",
    # metrics and judges
    "Aggregate", "ENDPOINT_DOWN", "Failure", "Judge", "Judgement", "Metric", "RunContext", "RunSetup", "all_gold_at",
    "answer_match", "exact_match", "f1_score", "has_answer", "hit_at", "mean_with_ci", "mrr_at", "ndcg_at",
    "recall_at", "rouge_l", "statistic_with_ci",
    # tasks
    "Task", "TaskCard", "TaskDefinition", "gold_evidence", "index_folder", "index_settings", "load_task",
    "split_sentences",
    # files, caches and the console
    "cache_dir", "exclusive", "fingerprint", "now", "open_text", "read_jsonl", "software", "table", "warn",
    "write_json_atomic", "write_text_atomic",
]

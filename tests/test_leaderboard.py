"""The leaderboard: significance, collecting runs, building the site, publishing and verifying."""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag_bench.cli import cli
from rag_bench.leaderboard.collect import collect_entries
from rag_bench.leaderboard.publish import export_results, leaderboard_command, portable_command
from rag_bench.leaderboard.redact import REDACTED, redact, redact_command
from rag_bench.leaderboard.significance import lower_is_better, paired_bootstrap, ties_with_best
from rag_bench.leaderboard.site import build_site
from rag_bench.leaderboard.verify import compare
from rag_bench.runner import RunConfig, execute

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "leaderboard" / "results"
LIMIT = 40


def small_run(provider: str, runs_dir: Path, limit: int = LIMIT, task: str = "nq_5k"):
    """A real run of `provider` on the first `limit` test questions, with the command that makes it."""
    argv = ["rag-bench", "run", "--provider", provider, "--task", task, "--limit", str(limit),
            "--reader", "none", "--runs-dir", str(runs_dir)]
    return execute(RunConfig(provider=provider, task=task, limit=limit, reader="none", runs_dir=runs_dir), argv=argv)


@pytest.fixture(scope="module")
def runs(nq_5k, tmp_path_factory) -> Path:
    runs_dir = tmp_path_factory.mktemp("lb-runs")
    for provider in ("bm25", "no_retrieval"):
        small_run(provider, runs_dir)
    return runs_dir


# --- significance -------------------------------------------------------------------------


def test_paired_bootstrap_separates_real_differences_from_noise():
    qids = [f"q{i}" for i in range(200)]
    strong = {q: 1.0 for q in qids}
    weak = {q: float(i % 2) for i, q in enumerate(qids)}
    assert paired_bootstrap(strong, weak).significant
    # The same scores with two answers swapped: a difference of 0 on average.
    swapped = dict(weak)
    swapped["q0"], swapped["q1"] = weak["q1"], weak["q0"]
    comparison = paired_bootstrap(weak, swapped)
    assert not comparison.significant and comparison.mean_diff == 0.0
    identical = paired_bootstrap(weak, dict(weak))
    assert identical.p_value == 1.0 and not identical.significant
    assert paired_bootstrap({"a": 1.0}, {"b": 0.0}) is None


def test_ties_with_best_marks_only_rows_within_noise():
    qids = [f"q{i}" for i in range(300)]
    best = {q: 1.0 if i % 10 else 0.0 for i, q in enumerate(qids)}  # 0.9
    close = {q: 1.0 if i % 10 not in (0, 1) else 0.0 for i, q in enumerate(qids)}  # 0.8 but 30 differences
    near = dict(best)
    near["q5"] = 0.0  # one question worse
    far = {q: 0.0 for q in qids}
    scores = [best, close, near, far]
    values = [sum(s.values()) / len(s) for s in scores]
    ties = ties_with_best("em", values, scores)
    assert set(ties) == {2}
    assert lower_is_better("latency_p50_ms") and not lower_is_better("recall@5")


# --- secrets --------------------------------------------------------------------------------


def test_redaction_hides_secret_settings_arguments_and_environment_values(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-0123456789")
    manifest = {"reader": {"settings": {"api_key": "sk-abc", "model": "m", "base_url": "http://x/?t=tok-0123456789"}},
                "sessions": [{"workdir": "/home/me/cache", "started": "t"}]}
    clean = redact(manifest)
    assert clean["reader"]["settings"]["api_key"] == REDACTED
    assert "tok-0123456789" not in json.dumps(clean)
    assert "workdir" not in clean["sessions"][0]
    assert redact_command(["rag-bench", "run", "-R", "api_key=sk-abc", "--token", "xyz", "--reader", "openai"]) == [
        "rag-bench", "run", "-R", f"api_key={REDACTED}", "--token", REDACTED, "--reader", "openai"]


def test_redaction_keeps_token_counts_and_the_tokenizer_but_hides_tokens(monkeypatch):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM_NOTE", "a long harmless value")
    manifest = {"provider": {"settings": {"max_new_tokens": 16, "m_tokens": 17, "tokenizer": "minilm",
                                          "hf_token": "hf_abcdefgh", "accessToken": "xyz"}},
                "judge_usage": {"ragas": {"prompt_tokens": 120, "completion_tokens": 30}}}
    clean = redact(manifest)
    settings = clean["provider"]["settings"]
    assert (settings["max_new_tokens"], settings["m_tokens"], settings["tokenizer"]) == (16, 17, "minilm")
    assert clean["judge_usage"]["ragas"] == {"prompt_tokens": 120, "completion_tokens": 30}
    assert settings["hf_token"] == REDACTED and settings["accessToken"] == REDACTED
    assert redact({"note": "a long harmless value"}) == {"note": "a long harmless value"}  # not a secret's variable
    assert redact_command(["rag-bench", "run", "-P", "max_new_tokens=8", "-R", "auth_token=abc"]) == [
        "rag-bench", "run", "-P", "max_new_tokens=8", "-R", f"auth_token={REDACTED}"]


# --- collecting and building --------------------------------------------------------------


def test_collect_reads_finished_runs_and_skips_unfinished_ones(runs, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    unfinished = next((copy / "nq_5k").glob("no_retrieval__*"))
    manifest = json.loads((unfinished / "manifest.json").read_text())
    manifest["status"] = "running"
    (unfinished / "manifest.json").write_text(json.dumps(manifest))
    entries = collect_entries(copy)
    assert [e.provider for e in entries] == ["bm25"]
    entry = entries[0]
    assert entry.counts["questions"] == LIMIT and entry.task == "nq_5k" and entry.reader == "none"
    assert entry.command[:2] == ["rag-bench", "run"]
    assert len(entry.scores["recall@5"]) == LIMIT
    assert 0 < entry.value("recall@5") <= 1


def test_site_has_a_table_per_task_links_plots_and_commands(runs, tmp_path):
    site = build_site(collect_entries(runs), tmp_path / "site")
    index = site.index.read_text(encoding="utf-8")
    assert 'data-task="nq_5k"' in index and 'id="table-nq_5k"' in index
    for header in ("provider", "recall@5", "answer_recall@20", "latency_p50_ms", "footprint_mb_per_1k", "reproduce with"):
        assert f">{header}</th>" in index
    assert "rag-bench run --provider bm25 --task nq_5k --limit 40 --reader none" in index
    # 95% intervals are printed under each mean.
    assert index.count('class="ci"') >= 2 * 13
    for entry in site.entries:
        assert f'href="runs/{entry.row_id}.html"' in index
        assert (site.root / "runs" / f"{entry.row_id}.html").is_file()
    names = sorted(p.name for p in site.plots)
    assert names == sorted([
        "nq_5k-recall-at-k.png", "nq_5k-answer_recall-at-k.png",
        "nq_5k-answer_recall-at-5-vs-latency_p50_ms.png", "nq_5k-answer_recall-at-5-vs-footprint_mb_per_1k.png",
    ])
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in site.plots)
    assert "Not shown (no value &gt; 0 to place on a log axis): no_retrieval" in index
    # no_retrieval's recall is 0 on every question: clearly worse than bm25, so no tie mark.
    assert 'class="tie" title=' not in index
    bm25 = next(e for e in site.entries if e.provider == "bm25")
    page = (site.root / "runs" / f"{bm25.row_id}.html").read_text(encoding="utf-8")
    first = next(bm25.records())
    assert html.escape(first["question"]) in page
    assert page.count("<tr>") >= LIMIT


def test_headline_view_has_the_six_figures_and_the_full_view_every_metric(runs, tmp_path):
    site = build_site(collect_entries(runs), tmp_path / "site", plots=False)
    index = site.index.read_text(encoding="utf-8")
    start = index.index('id="headline-nq_5k"')
    headline = index[start:index.index("</table>", start)]
    headers = re.findall(r'<th scope="col">([^<]*)</th>', headline)
    assert headers == ["provider", "reader", "EM", "F1", "recall@5", "evidence ROUGE-L", "latency ms (p50)", "MB per 1K passages"]
    assert "answer_recall@20" not in headline and "top 5" in headline
    full = index[index.index('id="table-nq_5k"'):]
    for header in ("answer_recall@20", "trained on corpus", "base model", "accelerator", "reproduce with"):
        assert f">{header}</th>" in full
    assert 'id="view-toggle"' in index and 'class="view-headline"' in index and 'class="view-full"' in index


def _with(entry, **aggregate):
    clone = copy.deepcopy(entry)
    clone.aggregate.update({name: {"value": value, "ci95": [value - 0.01, value + 0.01], "n": 40} for name, value in aggregate.items()})
    return clone


def test_controls_show_in_the_full_view_and_the_smallest_margin_beside_evidence_rouge(runs, tmp_path):
    bm25 = next(e for e in collect_entries(runs) if e.provider == "bm25")
    generator = _with(bm25, **{"control.zeroed_z.evidence_rougeL": 0.20, "delta.zeroed_z.evidence_rougeL": 0.25,
                               "control.question_echo.evidence_rougeL": 0.16, "delta.question_echo.evidence_rougeL": 0.07})
    generator.provider = "generator"
    generator.manifest["provider"]["metadata"].update(trained_on_corpus=True, trained_splits=["train"], parameters_trained=99,
                                                      key_init="initialised from a pretrained retriever (its passage vectors)")
    site = build_site([bm25, generator], tmp_path / "site", plots=False)
    index = site.index.read_text(encoding="utf-8")
    headline = index[index.index('id="headline-nq_5k"'):index.index('id="table-nq_5k"')]
    assert headline.count('class="ctrl"') == 1  # only the row that has controls
    assert "−ctrl +0.070" in headline and "[+0.060, +0.080]" in headline and "question_echo" in headline
    assert headline.count('class="trained"') == 2 and "trained on this task&#x27;s corpus: yes (train)" in headline
    # where the keys came from is named beside the provider (the whole value on hover)
    assert '>keys: initialised from a pretrained retriever</span>' in headline and "(its passage vectors)" in headline
    full = index[index.index('id="table-nq_5k"'):]
    for name in ("control.question_echo.evidence_rougeL", "delta.zeroed_z.evidence_rougeL"):
        assert f">{name}</th>" in full
    page = (site.root / "runs" / f"{generator.row_id}.html").read_text(encoding="utf-8")
    assert "<dt>trained on the task&#x27;s corpus</dt><dd>yes (train)</dd>" in page
    assert "<dt>reader depth (evidence texts read)</dt><dd>5</dd>" in page


def test_tied_rows_are_marked(runs, tmp_path):
    """Two runs of the same provider with different settings that barely differ are marked as ties."""
    runs_dir = tmp_path / "runs"
    small_run("bm25", runs_dir)
    execute(RunConfig(provider="bm25", task="nq_5k", limit=LIMIT, reader="none", runs_dir=runs_dir,
                      provider_params={"k1": "1.0"}),
            argv=["rag-bench", "run", "--provider", "bm25", "--task", "nq_5k", "--limit", str(LIMIT), "-P", "k1=1.0"])
    site = build_site(collect_entries(runs_dir), tmp_path / "site", plots=False)
    index = site.index.read_text(encoding="utf-8")
    assert 'class="tie" title="not significantly different from the best row' in index
    assert "Pairs of rows whose difference is not significant" in index


def test_build_refuses_to_clear_a_folder_it_did_not_make(runs, tmp_path):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["leaderboard", "build", str(runs), "--out", str(precious)])
    assert result.exit_code == 1 and "not a site built by rag-bench" in result.output
    assert (precious / "notes.txt").read_text() == "keep me"


def test_build_without_runs_says_what_to_do(tmp_path):
    result = CliRunner().invoke(cli, ["leaderboard", "build", str(tmp_path), "--out", str(tmp_path / "site")])
    assert result.exit_code == 1 and "no finished runs" in result.output


# --- publishing and verifying ---------------------------------------------------------------


def test_published_results_keep_scores_but_no_dataset_text(runs, tmp_path):
    results = tmp_path / "results"
    written = export_results(collect_entries(runs), results)
    assert len(written) == 2 and all(not p.replaced for p in written)
    originals = {e.provider: e for e in collect_entries(runs)}
    texts = [r["question"] for r in originals["bm25"].records()] + [r["evidence"][0] for r in originals["bm25"].records()]
    for path in (p.path for p in written):
        raw = path.read_text(encoding="utf-8")
        doc = json.loads(raw)
        # Scores and machine measurements are kept apart, as in a run folder.
        assert "recall@5" in doc["metrics"]["aggregate"] and "latency_p50_ms" not in doc["metrics"]["aggregate"]
        assert "latency_p50_ms" in doc["metrics"]["measurements"]
        assert not any(text in raw for text in texts)
        assert "workdir" not in raw
    republished = {e.provider: e for e in collect_entries(results)}
    for provider, entry in originals.items():
        again = republished[provider]
        assert again.records_path is None
        assert again.aggregate == json.loads(json.dumps(entry.aggregate))
        assert again.scores["recall@5"] == pytest.approx(entry.scores["recall@5"])
        assert again.command == portable_command(entry.command)  # the publisher's --runs-dir left out
    site = build_site(list(republished.values()), tmp_path / "site", plots=False)
    page = (site.root / "runs" / f"{republished['bm25'].row_id}.html").read_text(encoding="utf-8")
    assert "not published" in page


def test_variants_stand_side_by_side_and_the_same_settings_replace(runs, tmp_path):
    results = tmp_path / "results"
    export_results(collect_entries(runs), results)
    other = tmp_path / "runs"
    execute(RunConfig(provider="bm25", task="nq_5k", limit=LIMIT, reader="none", runs_dir=other, provider_params={"b": "0.5"}),
            argv=["rag-bench", "run", "--provider", "bm25", "--task", "nq_5k", "--limit", str(LIMIT), "-P", "b=0.5"])
    (published,) = export_results(collect_entries(other), results)
    assert published.replaced == []  # other settings: a second row, not a replacement
    bm25 = [e for e in collect_entries(results) if e.provider == "bm25"]
    assert sorted(e.manifest["provider"]["settings"]["b"] for e in bm25) == [0.4, 0.5]
    site = build_site(collect_entries(results), tmp_path / "site", plots=False)
    index = site.index.read_text(encoding="utf-8")
    assert '<span class="variant">b=0.4</span>' in index and '<span class="variant">b=0.5</span>' in index

    # The same settings again (here a new provider version): the old file goes, and publish says what it replaced.
    doc = json.loads(published.path.read_text())
    doc["manifest"]["provider"]["version"] = "0"
    published.path.write_text(json.dumps(doc))
    (again,) = export_results(collect_entries(other), results)
    (replaced,) = again.replaced
    assert replaced.path == published.path and "provider version: 0 -> 1" in replaced.describe()
    assert len([e for e in collect_entries(results) if e.provider == "bm25"]) == 2


def test_a_row_published_before_reader_depth_is_replaced_by_the_same_settings(runs, tmp_path):
    results = tmp_path / "results"
    (published,) = export_results([e for e in collect_entries(runs) if e.provider == "bm25"], results)
    legacy = json.loads(published.path.read_text())
    for key in ("reader_k",):
        legacy["manifest"].pop(key)
    legacy["manifest"]["provider"].pop("metadata")
    old = published.path.with_name("nq_5k__bm25__test__none__000000000000.json")
    old.write_text(json.dumps(legacy))
    published.path.unlink()
    site = build_site(collect_entries(results), tmp_path / "site", plots=False)  # an old-format row still builds
    assert 'class="nometa"' in site.index.read_text(encoding="utf-8")
    (again,) = export_results([e for e in collect_entries(runs) if e.provider == "bm25"], results)
    assert [r.path for r in again.replaced] == [old] and not old.exists()
    assert "--reader-k: – -> 5" in again.replaced[0].describe()


def test_publish_says_what_it_replaced_and_where_it_writes_without_results(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["leaderboard", "publish", "--from-runs", str(runs), "--provider", "bm25"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    target = (tmp_path / "leaderboard" / "results").resolve()
    assert f"publishing into {target}: this folder is not a rag-bench checkout" in first.output
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert f"rag-bench: publishing into {target}\n" in second.output
    assert "  replaced " in second.output and "same settings and version" in second.output


def test_verify_reruns_the_recorded_command_and_reports_ok(runs, tmp_path):
    results = tmp_path / "results"
    export_results([e for e in collect_entries(runs) if e.provider == "bm25"], results)
    ok = CliRunner().invoke(cli, ["leaderboard", "verify", str(results)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "1/1 row(s) reproduced" in ok.output


def test_compare_fails_on_a_wrong_figure_or_a_changed_configuration(runs):
    (published,) = [e for e in collect_entries(runs) if e.provider == "bm25"]
    (rerun,) = [e for e in collect_entries(runs) if e.provider == "bm25"]
    assert compare(published, rerun, 0.01, 0.1).ok
    rerun.aggregate["latency_p50_ms"] = {"value": 1e6, "ci95": None, "n": 1}  # machine-dependent: ignored
    rerun.aggregate["recall@5"] = dict(rerun.aggregate["recall@5"], value=published.value("recall@5") + 0.05)
    check = compare(published, rerun, 0.01, 0.1)
    assert not check.ok and "recall@5" in check.detail and "latency" not in check.detail
    assert check.max_deviation == pytest.approx(0.05)
    rerun.aggregate["footprint_mb_per_1k"] = dict(rerun.aggregate["footprint_mb_per_1k"],
                                                  value=published.value("footprint_mb_per_1k") * 1.5)
    assert "footprint_mb_per_1k" in compare(published, rerun, 0.1, 0.1).detail
    rerun.config_hash = "000000000000"
    assert "configuration differs" in compare(published, rerun, 0.01, 0.1).detail


def test_publish_runs_the_commands_and_builds_the_site(nq_5k, tmp_path):
    assert leaderboard_command("no_retrieval", "nq_5k", "none") == [
        "rag-bench", "run", "--provider", "no_retrieval", "--task", "nq_5k", "--reader", "none"]
    results, site = tmp_path / "results", tmp_path / "site"
    done = CliRunner().invoke(cli, ["leaderboard", "publish", "--provider", "no_retrieval", "--task", "nq_5k",
                                    "--results", str(results), "--site", str(site)])
    assert done.exit_code == 0, done.output
    (entry,) = collect_entries(results)
    assert entry.command == leaderboard_command("no_retrieval", "nq_5k", "none")
    assert entry.counts["questions"] == len(nq_5k.split("test"))
    assert "rag-bench run --provider no_retrieval --task nq_5k --reader none" in (site / "index.html").read_text()


def test_publish_from_runs_exports_without_running(runs, tmp_path):
    results = tmp_path / "results"
    done = CliRunner().invoke(cli, ["leaderboard", "publish", "--from-runs", str(runs), "--provider", "bm25",
                                    "--results", str(results)])
    assert done.exit_code == 0, done.output
    assert [e.provider for e in collect_entries(results)] == ["bm25"]


def test_committed_results_are_complete_and_carry_no_records():
    entries = collect_entries(PUBLISHED)
    rows = {(e.task, e.provider) for e in entries}
    assert {("nq_5k", "bm25"), ("nq_5k", "no_retrieval")} <= rows
    for entry in entries:
        assert entry.command[:2] == ["rag-bench", "run"] and "--runs-dir" not in entry.command
        assert entry.status in ("complete", "complete_with_failures")
        assert entry.counts["questions"] == entry.manifest["task"]["questions"]
    # rows are <task>/<row>.json; published sweeps (sweeps/<name>/summary.json) have their own shape
    for path in (p for p in PUBLISHED.glob("*/*.json") if p.parent.name != "sweeps"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert set(doc) == {"format", "manifest", "metrics", "per_question_scores"}
        assert "per_question" not in doc["metrics"]


@pytest.mark.slow
def test_committed_bm25_and_no_retrieval_rows_verify(nq_5k):
    # the reader-none rows (the extractive reader's rows would train that reader first: minutes)
    rows = sorted((PUBLISHED / "nq_5k").glob("nq_5k__*__test__none__*.json"))
    result = CliRunner().invoke(cli, ["leaderboard", "verify", *map(str, rows), "--task", "nq_5k",
                                      "--provider", "bm25", "--provider", "no_retrieval"])
    assert result.exit_code == 0, result.output
    assert "2/2 row(s) reproduced within tolerance" in result.output


def test_a_published_command_drops_the_publishers_runs_dir_and_overwrite():
    assert portable_command(["rag-bench", "run", "--provider", "x", "--runs-dir", "elsewhere/runs", "-P", "a=1",
                             "--overwrite"]) == ["rag-bench", "run", "--provider", "x", "-P", "a=1"]
    assert portable_command(["rag-bench", "run", "--runs-dir=elsewhere/runs"]) == ["rag-bench", "run"]

"""The built site in a real browser (headless Chromium through selenium), opened from file://.

Skipped cleanly where selenium, Chromium or chromedriver is missing. CI installs
them (apt-get install chromium chromium-driver; pip install selenium).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from rag_bench.leaderboard.collect import collect_entries
from rag_bench.leaderboard.publish import export_results
from rag_bench.leaderboard.site import build_site

from tests.test_leaderboard import small_run
from tests.test_leaderboard_escaping import HOSTILE_ANSWER, HOSTILE_EVIDENCE, make_hostile_runs

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

LIMIT = 30
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _find(*names: str) -> str | None:
    for name in names:
        if name and (os.path.isfile(name) or shutil.which(name)):
            return shutil.which(name) or name
    return None


@pytest.fixture(scope="module")
def browser():
    binary = _find(os.environ.get("RAG_BENCH_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome")
    driver_path = _find(os.environ.get("RAG_BENCH_CHROMEDRIVER", ""), "chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("no headless Chromium here (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="rag-bench-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def site(nq_5k, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-site")
    for provider in ("bm25", "no_retrieval"):
        small_run(provider, root / "runs", limit=LIMIT)
    make_hostile_runs(root / "runs")
    # A second task for the filter: bm25's row published under another task name.
    bm25 = [e for e in collect_entries(root / "runs") if e.provider == "bm25"]
    (published,) = export_results(bm25, root / "results")
    path = published.path
    doc = json.loads(path.read_text())
    doc["metrics"]["run"]["task"] = doc["manifest"]["task"]["name"] = "nq_5k_copy"
    path.write_text(json.dumps(doc))
    return build_site(collect_entries(root / "runs", root / "results"), root / "site")


def _table_of(browser, task: str, kind: str, provider: str) -> str:
    """The id of the `kind` table (``headline`` or ``table``) of `task` that holds `provider`'s row: a task has one
    table per reader fingerprint (rag_bench.leaderboard.readers)."""
    for table in browser.find_elements(By.CSS_SELECTOR, f"section[data-task='{task}'] table[id^='{kind}-']"):
        if table.find_elements(By.CSS_SELECTOR, f"a[href*='__{provider}__']"):
            return table.get_attribute("id")
    raise AssertionError(f"no {kind} table of {task} holds {provider}")


def _other_table(browser, task: str, kind: str, provider: str) -> str:
    """The id of the one `kind` table of `task` that does not hold `provider`'s row (another reader's table)."""
    (other,) = [t.get_attribute("id") for t in browser.find_elements(
        By.CSS_SELECTOR, f"section[data-task='{task}'] table[id^='{kind}-']")
        if not t.find_elements(By.CSS_SELECTOR, f"a[href*='__{provider}__']")]
    return other


def _section(browser, task: str):
    return browser.find_element(By.CSS_SELECTOR, f"section[data-task='{task}']")


def _rows(browser, table_id: str) -> list[str]:
    return [row.get_attribute("data-row") for row in browser.find_elements(By.CSS_SELECTOR, f"[id='{table_id}'] tbody tr")]


def _header(browser, table_id: str, text: str):
    return next(th for th in browser.find_elements(By.CSS_SELECTOR, f"[id='{table_id}'] thead th") if th.text.startswith(text))


def _severe_errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _column(browser, table_id: str, text: str) -> list[str]:
    """The data-sort values of a column, top to bottom, found by its header text."""
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, f"[id='{table_id}'] thead th")]
    index = next(i for i, h in enumerate(headers) if h.startswith(text)) + 1
    cells = browser.find_elements(By.CSS_SELECTOR, f"[id='{table_id}'] tbody td:nth-child({index})")
    return [td.get_attribute("data-sort") for td in cells]


def _show_full_view(browser):
    browser.find_element(By.ID, "view-toggle").click()
    assert browser.find_element(By.ID, _table_of(browser, "nq_5k", "table", "bm25")).is_displayed()


def test_headline_view_first_fits_1280_px_and_the_toggle_shows_every_metric(browser, site, tmp_path):
    browser.set_window_size(1280, 900)
    try:
        browser.get(site.index.as_uri())
        # the table of the run whose reader answers (the hostile reader's, not bm25's `none`): EM and F1 in its headline
        headline = browser.find_element(By.ID, _other_table(browser, "nq_5k", "headline", "bm25"))
        full = browser.find_element(By.ID, _other_table(browser, "nq_5k", "table", "bm25"))
        assert headline.is_displayed() and not full.is_displayed()
        headers = [th.text for th in headline.find_elements(By.CSS_SELECTOR, "thead th")]
        assert headers == ["provider", "reader", "EM", "F1", "recall@5", "evidence ROUGE-L", "latency ms (p50)",
                           "MB per 1K passages"]
        # Readable without horizontal scrolling: neither the page nor the table's own wrapper scrolls sideways.
        assert browser.execute_script("return document.documentElement.scrollWidth") <= browser.execute_script(
            "return document.documentElement.clientWidth")
        wrap = headline.find_element(By.XPATH, "..")
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", wrap)
        browser.save_screenshot(str(tmp_path / "headline-1280.png"))
        assert (tmp_path / "headline-1280.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        toggle = browser.find_element(By.ID, "view-toggle")
        toggle.click()
        assert full.is_displayed() and not headline.is_displayed() and toggle.get_attribute("aria-pressed") == "true"
        full_headers = [th.text for th in full.find_elements(By.CSS_SELECTOR, "thead th")]
        assert {"answer_recall@20", "ndcg@10", "trained on corpus", "base model", "accelerator"} <= set(full_headers)
        browser.save_screenshot(str(tmp_path / "full-1280.png"))
        toggle.click()
        assert headline.is_displayed() and not full.is_displayed()
        assert _severe_errors(browser) == []
    finally:
        browser.set_window_size(1920, 1080)


def test_sorting_a_column_reorders_the_rows(browser, site):
    browser.get(site.index.as_uri())
    assert browser.title == "rag-bench leaderboard"
    _show_full_view(browser)
    table = _table_of(browser, "nq_5k", "table", "bm25")
    recall = _header(browser, table, "recall@5")
    recall.click()
    assert recall.get_attribute("aria-sort") == "ascending"
    values = [float(v) for v in _column(browser, table, "recall@5")]
    assert values == sorted(values) and values[0] < values[-1]
    recall.click()
    assert recall.get_attribute("aria-sort") == "descending"
    assert [float(v) for v in _column(browser, table, "recall@5")] == sorted(values, reverse=True)
    assert "__bm25__" in _rows(browser, table)[0]
    _header(browser, table, "provider").click()
    names = _column(browser, table, "provider")
    assert names == sorted(names, key=str.lower) and len(names) == 2  # the hostile reader's row has a table of its own
    assert _severe_errors(browser) == []


def test_task_filter_shows_one_task(browser, site):
    browser.get(site.index.as_uri())
    nq, copy = (_section(browser, name) for name in ("nq_5k", "nq_5k_copy"))
    assert nq.is_displayed() and copy.is_displayed()
    Select(browser.find_element(By.ID, "task-filter")).select_by_value("nq_5k_copy")
    assert copy.is_displayed() and not nq.is_displayed()
    Select(browser.find_element(By.ID, "task-filter")).select_by_value("")
    assert nq.is_displayed()


def test_plots_load(browser, site):
    browser.get(site.index.as_uri())
    images = browser.find_elements(By.CSS_SELECTOR, "figure img")
    assert len(images) == len(site.plots) > 0
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img) for img in images)


def test_a_row_link_opens_its_per_question_records(browser, site):
    browser.get(site.index.as_uri())
    headline = _table_of(browser, "nq_5k", "headline", "bm25")
    browser.find_element(By.CSS_SELECTOR, f"[id='{headline}'] a[href*='__bm25__']").click()
    assert "/runs/nq_5k__bm25__" in browser.current_url
    assert browser.find_element(By.TAG_NAME, "h1").text == "bm25 on nq_5k/test, reader none"
    bm25 = next(e for e in site.entries if e.provider == "bm25" and e.task == "nq_5k")
    records = list(bm25.records())
    rows = browser.find_elements(By.CSS_SELECTOR, "#questions tbody tr")
    assert len(rows) == LIMIT
    assert rows[0].find_elements(By.TAG_NAME, "td")[1].text == records[0]["question"]
    # The per-question table sorts too: by recall@1, ascending puts misses first.
    _header(browser, "questions", "recall@1").click()
    column = [float(v) for v in _column(browser, "questions", "recall@1")]
    assert column == sorted(bm25.scores["recall@1"].values())
    assert _severe_errors(browser) == []


def test_hostile_run_runs_no_script(browser, site):
    hostile = next(e for e in site.entries if e.reader == "hostile_reader")
    for url in (site.index.as_uri(), (site.root / "runs" / f"{hostile.row_id}.html").as_uri()):
        browser.get(url)
        assert browser.execute_script("return typeof window.__pwned") == "undefined"
    cells = browser.find_elements(By.CSS_SELECTOR, "#questions tbody tr td")
    texts = [cell.get_attribute("textContent") for cell in cells]
    assert any(HOSTILE_ANSWER == text for text in texts)
    assert any(HOSTILE_EVIDENCE in text for text in texts)
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img, main svg") == []

"""The built site in a real headless Chromium, from file:// with no network.

Checks that the index lists every task and strategy, that the Pareto chart renders an SVG with
a mark per configuration, that a drill-down link leads to a query page, that no script injected
through a prompt or an answer runs (``window.__xss`` stays undefined), and that no page logs a
JavaScript error. Screenshots go to ``test-artifacts/``. Skips only when Chromium, chromedriver
or selenium cannot be found.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = next(
    (
        p
        for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
        if p and Path(p).exists()
    ),
    None,
)
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "Chromium or chromedriver not found (Debian: apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.site import toysite as toy  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from uisbench.site.build import build_site

    folder = tmp_path_factory.mktemp("browser")
    engine = toy.make_toy_db(folder)
    return build_site(engine, folder / "out")


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="uisbench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1400,1200",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _assert_clean(driver, where: str) -> None:
    assert driver.execute_script("return typeof window.__xss") == "undefined", where
    assert not driver.find_elements(By.CSS_SELECTOR, 'img[src="x"]'), where
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, f"{where}: {severe}"


def _screenshot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(max(int(height) + 80, 900), 5000))
    driver.save_screenshot(str(ARTIFACTS / name))
    driver.set_window_size(1400, 1200)


def test_index_lists_tasks_and_strategies_and_renders_chart(site: Path, browser) -> None:
    _open(browser, site / "index.html")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return window.__uisbenchCharts || 0") >= 1
    )
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "toy-task" in text
    names = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.lb td.name a")}
    assert names == {"single", "majority", "random", "oracle", "stub-online"}
    # The chart is an SVG with one symbol per configuration (plus CI rules and fronts).
    svg = browser.find_element(By.CSS_SELECTOR, "div.chart svg")
    assert svg.size["width"] > 300 and svg.size["height"] > 200
    symbols = browser.find_elements(By.CSS_SELECTOR, "div.chart svg g.mark-symbol.role-mark path")
    assert len(symbols) == len(toy.STRATEGIES)  # every configuration but the hidden oracle
    axis_titles = {t.text for t in browser.find_elements(By.CSS_SELECTOR, "div.chart svg text")}
    assert any("per query (log scale)" in t for t in axis_titles)
    _assert_clean(browser, "index")
    _screenshot(browser, "site-index.png")


def test_sorting_a_column_reorders_rows(site: Path, browser) -> None:
    _open(browser, site / "index.html")
    table = browser.find_element(By.CSS_SELECTOR, "table.lb")
    first = [r.text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr td.name")]
    header = table.find_elements(By.CSS_SELECTOR, "thead th")[1]  # Strategy (text)
    header.click()
    after = [r.text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr td.name")]
    assert [a.split()[0] for a in after] == sorted(a.split()[0] for a in first)
    assert header.get_attribute("aria-sort") == "ascending"


def test_task_page_and_drill_down_link(site: Path, browser) -> None:
    task_page = next((site / "tasks").glob("*.html"))
    _open(browser, task_page)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return window.__uisbenchCharts || 0") >= 2
    )
    _assert_clean(browser, "task page")
    _screenshot(browser, "site-task.png")
    link = browser.find_element(By.CSS_SELECTOR, "ol.qlist a")
    link.click()
    WebDriverWait(browser, 20).until(lambda d: "/queries/" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Query ")
    assert browser.find_element(By.CSS_SELECTOR, "pre.prompt").text.strip()
    rows = browser.find_elements(By.CSS_SELECTOR, "table.decisions tbody tr")
    assert len(rows) == 9  # every run decided this query (7 strategies + 2 stub seeds)
    # The recorded samples come first; the decision rows are collapsed until asked for.
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headings.index("Samples recorded in the bank") < headings.index("Decisions of every run")
    assert not rows[0].is_displayed()
    browser.find_element(By.CSS_SELECTOR, "details.decisions summary").click()
    assert rows[0].is_displayed()
    _assert_clean(browser, "query page")
    # From the query page on to one run's provenance.
    browser.find_element(By.CSS_SELECTOR, "table.decisions tbody tr td:nth-child(3) a").click()
    WebDriverWait(browser, 20).until(lambda d: "/runs/" in d.current_url)
    assert "Provenance" in browser.find_element(By.TAG_NAME, "main").text
    _assert_clean(browser, "run page")


def test_injected_markup_never_executes(site: Path, browser) -> None:
    """Pages that display the probes: the escaped text is visible, nothing ran."""
    pages = [
        p
        for p in sorted((site / "queries").rglob("*.html"))
        if "&lt;script&gt;" in p.read_text("utf-8")
    ][:4]
    pages += sorted((site / "runs").glob("*.html"))[:2]
    pages += [next((site / "configs").rglob("*stub-online*.html"))]
    assert len(pages) >= 5
    shown = False
    for page in pages:
        _open(browser, page)
        browser.execute_script("return 0")  # let inline handlers (if any) run
        _assert_clean(browser, page.name)
        shown |= toy.XSS_SCRIPT in browser.find_element(By.TAG_NAME, "main").text
    assert shown  # the probe is displayed as text
    _screenshot(browser, "site-query-xss.png")


def test_clicking_a_point_opens_its_configuration(site: Path, browser) -> None:
    _open(browser, site / "index.html")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return window.__uisbenchCharts || 0") >= 1
    )
    point = browser.find_element(By.CSS_SELECTOR, "div.chart svg g.mark-symbol.role-mark path")
    ActionChains(browser).move_to_element(point).click().perform()
    WebDriverWait(browser, 20).until(lambda d: "/configs/" in d.current_url)
    assert "Settings" in browser.find_element(By.TAG_NAME, "main").text
    _assert_clean(browser, "configuration page")


def test_bidi_labels_display_in_logical_order(tmp_path: Path, browser) -> None:
    """A model named ``good<U+202E>evil`` shows as ``goodevil`` in the page and in the chart."""
    from tests.site import test_site_bidi as mod

    out = mod.make_bidi_site(tmp_path)
    _open(browser, out / "index.html")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg text"))
    shown = browser.execute_script(
        "return document.body.innerText + [...document.querySelectorAll('svg text')]"
        ".map(t => t.textContent).join(' ')"
    )
    assert "goodevil" in shown
    assert not mod.BIDI.search(shown), mod.BIDI.search(shown)
    _assert_clean(browser, "bidi index")


def test_each_task_section_charts_its_own_configurations(tmp_path: Path, browser) -> None:
    """Three tasks in one database: every section of the index (and every task page) draws its
    own task's points, not the first task's (the charts' element ids are unique per task)."""
    from uisbench.site.build import build_site

    out = build_site(toy.make_three_task_db(tmp_path), tmp_path / "out")
    _open(browser, out / "index.html")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return window.__uisbenchCharts || 0") >= len(toy.THREE_TASKS)
    )
    sections = browser.find_elements(By.CSS_SELECTOR, "section.task")
    assert len(sections) == len(toy.THREE_TASKS)
    for section in sections:
        task = section.find_element(By.CSS_SELECTOR, "h2 a").text
        symbols = section.find_elements(
            By.CSS_SELECTOR, "div.chart svg g.mark-symbol.role-mark path"
        )
        assert len(symbols) == len(toy.THREE_TASKS[task]), task
        labels = browser.execute_script(
            "return JSON.parse(document.getElementById("
            "arguments[0].querySelector('div.chart').getAttribute('data-spec')).textContent)"
            ".datasets.points.map(p => p.config_label)",
            section,
        )
        assert sorted(labels) == sorted(toy.THREE_TASKS[task]), task
    ids = browser.execute_script("return [...document.querySelectorAll('[id]')].map(e => e.id)")
    assert len(ids) == len(set(ids)), "duplicate element ids on the index"
    _assert_clean(browser, "three-task index")


def test_pages_fit_1400_pixels_and_upper_bounds_are_behind_a_toggle(site: Path, browser) -> None:
    """No page scrolls sideways in a 1400 px window; the oracle is not drawn (and does not set
    the y-axis) until its checkbox is ticked; every family's best point is labelled."""
    task_page = next((site / "tasks").glob("*.html"))
    for page in [site / "index.html", task_page, *sorted((site / "runs").glob("*.html"))[:2]]:
        _open(browser, page)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 1400, (page.name, width)
    _open(browser, task_page)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return window.__uisbenchCharts || 0") >= 3
    )
    figure = browser.find_element(By.CSS_SELECTOR, "figure.pareto")
    marks = "div.chart svg g.mark-symbol.role-mark path"
    shown = len(figure.find_elements(By.CSS_SELECTOR, marks))
    assert shown == len(toy.STRATEGIES)  # every configuration but the oracle (+ the stub)
    labels = {t.text for t in figure.find_elements(By.CSS_SELECTOR, "g.mark-text.role-mark text")}
    assert {"toy-small", "toy-mid", "toy-large"} <= labels  # single models
    assert "majority:model=toy-mid,k=4" in labels  # the tts family's best
    assert not any(t.startswith("oracle") for t in labels)
    figure.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
    WebDriverWait(browser, 10).until(
        lambda d: len(figure.find_elements(By.CSS_SELECTOR, marks)) == shown + 1
    )
    # The families-at-budget plot draws a dot per family and budget, and each model.
    budget = browser.find_element(By.CSS_SELECTOR, "figure.budgetfig svg")
    assert len(budget.find_elements(By.CSS_SELECTOR, "g.mark-symbol.role-mark path")) >= 3
    _assert_clean(browser, "task page charts")

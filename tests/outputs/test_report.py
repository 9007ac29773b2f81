"""The HTML report: self-contained, complete, escaped, and drawn by a real browser."""

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

import customerlens
from customerlens.io import demo
from customerlens.outputs.report import build_report, write_report
from customerlens.outputs.report.build import SECTION_TITLES
from tests.conftest import cli, cli_in_process

ODD = '<b>&"x'
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # git-ignored: screenshots to look at
#: Sections a demo run always has (campaign results need a campaign_lift table).
EXPECTED_SECTIONS = [key for key in SECTION_TITLES if key != "campaigns"]
EXPECTED_CHARTS = {"elbow", "distribution", "box-plots", "spending", "trends", "cohorts", "migration", "top-products",
                   "distinctive-products", "value-by-segment", "p-alive"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    path, _ = demo.write(demo.generate(400, seed=5), root / "demo.csv")
    customerlens.run(path, root / "out", customerlens.RunConfig.from_options(charts=False, top_n=3))
    return root / "out" / "customerlens.duckdb"


@pytest.fixture(scope="module")
def html(store) -> str:
    from customerlens.outputs import charts

    # every chart checked against the Vega-Lite schema (runs skip the check): one that fails is left out
    # of the report, which test_every_section_and_chart notices
    checked = charts.spec
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(charts, "spec", lambda chart: checked(chart, validate=True))
        return build_report(store)


def _copy(store: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "customerlens.duckdb"
    shutil.copyfile(store, target)
    return target


def _query(store: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(store), read_only=True) as con:
        return con.sql(sql).df()


class _Page(HTMLParser):
    """Tags with their attributes, chart divs and the JSON spec scripts (script text is not parsed as HTML)."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.specs: dict[str, str] = {}
        self.headings: list[str] = []
        self._spec_id = None
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "script" and attrs.get("type") == "application/json":
            self._spec_id = attrs["id"]
            self.specs[self._spec_id] = ""
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag):
        if tag == "script":
            self._spec_id = None
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._spec_id is not None:
            self.specs[self._spec_id] += data
        elif self._in_h2:
            self.headings.append(data.strip())


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def test_the_report_takes_a_runs_chart_specs_by_their_stems(store):
    """A run hands its report the charts it drew (Vega-Lite specs by file stem): the report shows them instead
    of drawing them again from the store; the others it draws itself.
    """
    from customerlens.outputs.report import REPORT_CHARTS

    assert set(REPORT_CHARTS) == EXPECTED_CHARTS
    marked = {"mark": "point", "title": "drawn by the run", "data": {"values": [{"a": 1}]},
              "$schema": "https://vega.github.io/schema/vega-lite/v6.json"}
    page = _parse(build_report(store, charts={"box_plots": marked}))
    box = json.loads(page.specs["chart-box-plots-spec"])
    assert box["title"] == "drawn by the run" and "$schema" not in box
    assert "$schema" in marked  # the run's spec is not changed (it writes the SVG from it too)
    assert json.loads(page.specs["chart-spending-spec"])["title"] != "drawn by the run"
    assert set(page.specs) >= {f"chart-{key}-spec" for key in EXPECTED_CHARTS}


def test_the_report_needs_nothing_from_outside(html):
    page = _parse(html)
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "data", "poster"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), f"<{tag} {name}={value!r}> reaches outside"
        assert not (tag == "link" and "stylesheet" in (attrs.get("rel") or "")), "external stylesheet"
        assert not (tag == "script" and attrs.get("src")), "external script"
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html.split("<script>")[0])
    assert html.count("window.vegaEmbed=") == 1, "the vega bundle is inlined exactly once"
    assert len(html) < 2_000_000


def test_every_section_segment_and_strategy_is_shown(html, store):
    page = _parse(html)
    for key in EXPECTED_SECTIONS:
        assert SECTION_TITLES[key] in page.headings, f"section {key!r} missing"
        assert f'<section id="{key}">' in html and f'href="#{key}"' in html
    assert SECTION_TITLES["campaigns"] not in page.headings  # no campaign_lift table in a plain run
    names = _query(store, "SELECT DISTINCT segment_name FROM segments")["segment_name"]
    assert len(names) >= 2
    for name in names:
        assert str(escape(name)) in html
    for strategy in _query(store, "SELECT strategy FROM action_plan")["strategy"]:
        assert strategy and str(escape(strategy)) in html
    record = json.loads(_query(store, "SELECT record FROM run")["record"].iloc[0])
    assert str(escape(record["segmentation"]["reason"])) in html
    assert "targets/" in html
    # both recommendation lists of each example customer, in its own card, each product with its reason
    import re

    cards = re.findall(r"<h3>Customer (.+?)</h3>(.*?)</article>", html, flags=re.S)
    assert cards
    for customer, card in cards:
        for which in ("top", "discover"):
            shown = _query(store, f"SELECT product_name, reason FROM recommendations WHERE list = '{which}' "
                                  f"AND customer_id = '{customer}' AND rank <= 5 ORDER BY rank")
            assert len(shown) > 0, (customer, which)
            for name, reason in shown.itertuples(index=False):
                assert str(escape(name)) in card and str(escape(reason)) in card, (customer, which, name)
    assert html.count('<ol class="discover">') == len(cards)


def test_every_chart_spec_is_valid_json(html):
    page = _parse(html)
    divs = {attrs["id"]: attrs["data-spec"] for tag, attrs in page.tags
            if tag == "div" and "chart" in (attrs.get("class") or "").split()}
    assert {key.removeprefix("chart-") for key in divs} == EXPECTED_CHARTS
    assert sorted(divs.values()) == sorted(page.specs)
    for spec_id, text in page.specs.items():
        spec = json.loads(text)
        assert "$schema" not in spec and ("datasets" in spec or "data" in spec), spec_id
        assert "<" not in text  # nothing inside can close the script early


def test_write_report_is_deterministic_and_atomic(store, html, tmp_path):
    target = write_report(store, tmp_path / "sub" / "report.html")
    assert target == tmp_path / "sub" / "report.html"
    assert target.read_text(encoding="utf-8") == html
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]  # no temporary file left


def test_product_names_and_texts_are_escaped(store, tmp_path):
    copy = _copy(store, tmp_path / "odd")
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE recommendations SET product_name = ? WHERE rank = 1", [ODD])
        con.execute("UPDATE top_products SET product_name = ? WHERE rank = 1", [ODD])
        con.execute("UPDATE action_plan SET promote = ? || '; ' || promote", [ODD])
        con.execute("UPDATE segment_profiles SET strategy = ? WHERE segment_id = 1", [f"Call them {ODD}"])
    text = build_report(copy)
    assert ODD not in text
    assert "&lt;b&gt;&amp;&#34;x" in text  # in the recommendations, the action plan and the overview
    assert "Call them &lt;b&gt;&amp;&#34;x" in text
    spec = json.loads(_parse(text).specs["chart-top-products-spec"])
    names = {row["product_name"] for rows in spec["datasets"].values() for row in rows if "product_name" in row}
    assert ODD in names


def test_absent_tables_leave_their_sections_out(store, tmp_path):
    copy = _copy(store, tmp_path / "bare")
    with duckdb.connect(str(copy)) as con:
        for table in ("recommendations", "segment_value", "customer_value", "top_products", "distinctive_products",
                      "segment_elbow", "segment_migration", "cohort_retention"):
            con.execute(f"DROP TABLE {table}")
    text = build_report(copy)
    page = _parse(text)
    for key in ("recommendations", "value", "products", "migration", "cohorts"):
        assert SECTION_TITLES[key] not in page.headings
    for key in ("quality", "choosing-k", "overview", "action-plan"):
        assert SECTION_TITLES[key] in page.headings
    assert not any(key.startswith(("chart-elbow", "chart-p-alive", "chart-top")) for key in page.specs)


def test_campaign_results_when_the_store_has_them(store, tmp_path):
    from customerlens.models.campaigns import campaign_lift

    rng = np.random.default_rng(0)
    n = 1200
    arms = rng.choice(["control", "email"], n)
    segment = rng.choice(["High-Value", "At-Risk"], n)
    bought = (rng.random(n) < np.where(arms == "email", 0.3, 0.15)).astype(int)
    lift = campaign_lift(pd.DataFrame({"group": arms, "segment": segment, "bought": bought}),
                         outcomes=["bought"], segment_by=["segment"], bootstrap=0)
    copy = _copy(store, tmp_path / "campaign")
    with duckdb.connect(str(copy)) as con:
        con.register("lift", lift)
        con.execute("CREATE TABLE campaign_lift AS SELECT * FROM lift")
    page = _parse(build_report(copy))
    assert SECTION_TITLES["campaigns"] in page.headings
    assert json.loads(page.specs["chart-campaign-lift-0-spec"])


def test_report_command(store, tmp_path):
    copy = _copy(store, tmp_path / "cmd")
    result = cli("report", "--store", copy)
    assert result.returncode == 0, result.stderr
    assert (copy.parent / "report.html").is_file() and "report.html" in result.stdout
    other = tmp_path / "elsewhere" / "q3.html"
    result = cli_in_process("report", "--store", copy, "--out", other)  # and the same bytes from this process
    assert result.returncode == 0, result.stderr
    assert other.read_text(encoding="utf-8") == (copy.parent / "report.html").read_text(encoding="utf-8")


def test_report_command_without_a_store(tmp_path):
    result = cli("report", "--store", tmp_path / "missing" / "customerlens.duckdb")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no store" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
def test_the_report_renders_in_chromium(store, tmp_path):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI=true)")
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    target = write_report(store, tmp_path / "report.html")
    errors, requests = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(target.as_uri())
            page.wait_for_function("document.querySelectorAll('div.chart').length > 0 && "
                                   "document.querySelectorAll('div.chart').length === "
                                   "document.querySelectorAll('div.chart[data-rendered]').length", timeout=30_000)
            charts = page.locator("div.chart")
            assert charts.count() == len(EXPECTED_CHARTS)
            drawn = page.evaluate("""Array.from(document.querySelectorAll('div.chart')).map(div => {
                const svg = div.querySelector('svg, canvas');
                return svg ? svg.querySelectorAll('path, rect, line, text').length : 0; })""")
            assert all(marks > 10 for marks in drawn), drawn
            assert page.locator("div.chart svg, div.chart canvas").count() == len(EXPECTED_CHARTS)

            table = page.locator("#overview table")
            cells = table.locator("tbody tr td:nth-child(3)")  # customers

            def customers():
                return [float(v) for v in cells.evaluate_all("tds => tds.map(td => td.dataset.value)")]

            before = customers()
            header = table.locator("thead th", has_text="customers").first
            header.click()  # numbers: largest first
            assert customers() == sorted(before, reverse=True)
            assert header.get_attribute("aria-sort") == "descending"
            header.click()
            assert customers() == sorted(before)
            segment = table.locator("thead th", has_text="segment").first
            segment.click()  # text: A to Z
            names = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
            assert names == sorted(names, key=str.lower)
            ARTEFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTEFACTS / "report_full.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert requests and all(url.startswith(("file://", "data:")) for url in requests), requests


def test_partial_months_are_left_out_of_the_charts_and_said(store, html):
    """The demo's data ends mid-month: the trend and cohort charts leave that month out and say so."""
    partial = _query(store, "SELECT DISTINCT month FROM segment_monthly WHERE partial")["month"]
    assert len(partial) >= 1, "the demo data is expected to end in a partial month"
    name = pd.Timestamp(partial.iloc[-1]).strftime("%B %Y")
    assert 'id="trends-partial"' in html and f"{name} is only partly in the data" in html
    assert 'id="cohorts-partial"' in html
    assert _query(store, "SELECT count(*) AS n FROM cohort_retention WHERE partial")["n"][0] > 0

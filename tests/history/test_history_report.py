"""The report's trend section, movers table and health sparklines, from the stored history;
rendered by headless Chromium too (skipped, with the reason, without Chromium)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.report import CHART_IDS
from agent.report.trends import sparkline
from benchmarks.generate import AS_OF, generate, write_crm_folder
from tests.report_support import SVG, by_id, parse_strict, text_of

runner = CliRunner()
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def report_with_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("report")
    crm = write_crm_folder(work / "crm", generate(60, 400, 2500, seed=5))
    env = {"AX_STATE_URL": f"sqlite:///{work / 'state.db'}", "AX_CONFIG": "", "AX_CRM": "files"}
    since = (AS_OF - timedelta(days=180)).isoformat()
    args = ["history", "backfill", "--crm-dir", str(crm), "--since", since, "--every", "7d"]
    done = runner.invoke(app, [*args, "--until", (AS_OF - timedelta(days=1)).isoformat()], env=env)
    assert done.exit_code == 0, done.output
    out = work / "report.html"
    made = runner.invoke(
        app,
        ["report", "--crm-dir", str(crm), "--as-of", AS_OF.isoformat(), "--out", str(out)],
        env=env,
    )
    assert made.exit_code == 0, made.output
    return out


def test_trend_chart_movers_and_sparklines(report_with_history: Path) -> None:
    tree = parse_strict(report_with_history.read_text(encoding="utf-8"))
    trend = by_id(tree, "chart-trend")
    assert "26 points from" in text_of(trend)
    chart_text = text_of(next(trend.iter(f"{SVG}svg")))
    for label in ("NPS", "Strict NPS", "Account coverage", "Revenue coverage", "Closed-loop rate"):
        assert label in chart_text
    movers = by_id(tree, "movers-table")
    rows = list(movers.iter("tr"))[1:]
    assert rows
    changes = [float(text_of(r.findall("td")[4])) for r in rows]
    drops = [c for c in changes if c < 0]
    assert drops == sorted(drops)  # the largest drop first
    assert all(len(list(r.iter(f"{SVG}svg"))) == 1 for r in rows)  # a sparkline per mover
    at_risk = by_id(tree, "at-risk-table")
    assert "health, last 90 days" in text_of(at_risk)
    for row in list(at_risk.iter("tr"))[1:]:
        (spark,) = row.iter(f"{SVG}svg")
        assert spark.get("class") == "spark"
        assert spark.get("aria-label", "").startswith("health of ")
    sparks = [s for s in tree.iter(f"{SVG}svg") if s.get("class") == "spark"]
    assert len(list(tree.iter(f"{SVG}svg"))) == len(CHART_IDS) + len(sparks)


def test_a_sparkline_steps_breaks_on_null_and_says_first_and_last() -> None:
    start = AS_OF - timedelta(days=90)
    svg = str(
        sparkline(
            [
                (start, 80.0),
                (start + timedelta(days=30), None),
                (start + timedelta(days=60), 40.0),
                (AS_OF, 35.0),
            ],
            start,
            AS_OF,
            "health of <Acme>",
        )
    )
    assert 'aria-label="health of &lt;Acme&gt;: 80 → 35"' in svg
    assert svg.count("<polyline") == 1  # the null broke the line: 80 alone draws no segment
    assert svg.count("<circle") == 1


def test_without_history_the_report_says_so(tmp_path: Path) -> None:
    crm = write_crm_folder(tmp_path / "crm", generate(20, 100, 300, seed=2))
    out = tmp_path / "r.html"
    env = {"AX_STATE_URL": f"sqlite:///{tmp_path / 'none.db'}", "AX_CONFIG": ""}
    made = runner.invoke(
        app,
        ["report", "--crm-dir", str(crm), "--as-of", AS_OF.isoformat(), "--out", str(out)],
        env=env,
    )
    assert made.exit_code == 0, made.output
    tree = parse_strict(out.read_text(encoding="utf-8"))
    assert "No history is stored yet." in text_of(by_id(tree, "chart-trend"))
    assert "ax-agent history backfill" in text_of(by_id(tree, "chart-trend"))
    assert not (tmp_path / "none.db").exists()  # reading the report never creates a database


@pytest.mark.slow
def test_chromium_renders_the_trends_and_sparklines(
    report_with_history: Path, tmp_path: Path
) -> None:
    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright driver is not installed"
    )
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            page: Any = context.new_page()
            page.set_viewport_size({"width": 1366, "height": 768})
            page.on(
                "console",
                lambda m: errors.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report_with_history.as_uri(), wait_until="load")
            box = page.locator("#chart-trend svg").bounding_box()
            assert box is not None
            assert 400 < box["width"] <= 1366
            assert box["height"] > 100
            sparks = page.locator("#movers-table svg.spark")
            assert sparks.count() > 0
            for i in range(sparks.count()):
                spark_box = sparks.nth(i).bounding_box()
                assert spark_box is not None
                assert spark_box["width"] == pytest.approx(120, abs=1)
                assert spark_box["height"] == pytest.approx(24, abs=1)
            page.screenshot(path=str(tmp_path / "trends.png"), full_page=False)
        finally:
            context.close()
    assert errors == []
    assert requests == [report_with_history.as_uri()]

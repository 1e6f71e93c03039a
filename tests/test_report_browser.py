"""The report as a person sees it: rendered by headless Chromium (Debian's package).

Skipped, with the reason, when Chromium or the playwright driver is not installed;
``.ci/run`` installs Chromium so CI runs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.cli.demo_sample import DEMO_AS_OF, write_demo_folder
from agent.core.compute import compute_document
from agent.core.contract import MetricsConfig
from agent.core.document import TaskFigures
from agent.report import CHART_IDS, ReportOptions, build_report
from agent.sources.plainfiles import read_crm_folder

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow

TASKS = TaskFigures(
    crm="salesforce",
    recorded=12_480,
    pending=120,
    created=12_360,
    open=2_204,
    overdue=1_377,
    completed=10_156,
    completed_in_time=8_840,
    completed_in_crm=9_912,
    detractor_tasks=10_032,
    detractor_tasks_completed=8_101,
    detractor_tasks_closed_in_sla=6_650,
    closed_loop_rate=6_650 / 10_032,
)


def _chromium() -> str:
    found = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if found is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped")
    return found


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo portfolio's report (250 accounts), written to a file as the CLI does."""
    folder = tmp_path_factory.mktemp("demo")
    write_demo_folder(folder)
    data = read_crm_folder(folder, DEMO_AS_OF)
    doc = compute_document(
        data.accounts,
        data.contacts,
        data.responses,
        as_of=DEMO_AS_OF,
        config=MetricsConfig(),
        rejected=data.rejected,
    )
    # An agent that keeps CRM tasks: their section, with five-digit counts, fits too.
    doc = replace(doc, tasks=TASKS)
    options = ReportOptions(record_url="https://crm.example/accounts/{id}")
    out = folder / "report.html"
    out.write_text(build_report(doc, data.accounts, options), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def browser_page(
    page_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, list[str], list[str]]]:
    """The report opened in a fresh Chromium profile; console errors and requests recorded."""
    executable = _chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright driver is not installed"
    )
    profile = tmp_path_factory.mktemp("chromium-profile")
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = context.new_page()
            page.set_viewport_size({"width": 1366, "height": 768})  # a laptop screen
            page.on(
                "console",
                lambda m: (
                    errors.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            yield page, errors, requests
        finally:
            context.close()


def test_page_renders_without_console_errors(
    browser_page: tuple[Any, list[str], list[str]], page_file: Path
) -> None:
    page, errors, requests = browser_page
    assert page.title().startswith("Account Experience report")
    assert errors == []
    assert requests == [page_file.as_uri()]  # nothing fetched besides the file itself


def test_every_chart_has_a_visible_size(browser_page: tuple[Any, list[str], list[str]]) -> None:
    page, _, _ = browser_page
    for chart_id in CHART_IDS:
        svg = page.locator(f"#chart-{chart_id} svg")
        assert svg.count() == 1, chart_id
        box = svg.bounding_box()
        assert box is not None, chart_id
        assert box["width"] > 200, (chart_id, box)
        assert box["height"] > 100, (chart_id, box)
        assert box["width"] <= 1366, (chart_id, box)  # fits the laptop screen


def test_headline_figures_fit_their_cards(browser_page: tuple[Any, list[str], list[str]]) -> None:
    page, _, _ = browser_page
    overflowing = page.evaluate(
        """() => [...document.querySelectorAll('.headline, .task-card')]
              .filter(card => card.scrollWidth > card.clientWidth + 1)
              .map(card => card.dataset.key)"""
    )
    assert overflowing == []
    assert page.locator(".headline").count() == 8
    assert page.locator("#tasks .task-card").count() == 6


def test_print_layout_keeps_the_charts(
    browser_page: tuple[Any, list[str], list[str]], tmp_path: Path
) -> None:
    page, errors, _ = browser_page
    page.emulate_media(media="print")
    try:
        for chart_id in CHART_IDS:
            box = page.locator(f"#chart-{chart_id} svg").bounding_box()
            assert box is not None
            assert box["width"] > 0
            assert box["height"] > 0
        pdf = page.pdf(format="A4")
    finally:
        page.emulate_media(media="screen")
    assert pdf.startswith(b"%PDF")
    assert errors == []

"""Each chart draws the document's numbers: bar lengths, cell colours, dot positions."""

from __future__ import annotations

import io
import re

import matplotlib as mpl
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from agent.core.compute import compute_document
from agent.core.contract import MetricsConfig
from agent.core.document import DriverMetrics
from agent.report import charts, figures
from agent.report.digest import digest_text, drivers_png
from agent.report.render import COLORS, to_svg
from tests.core_builders import account, contact, days_ago, response
from tests.report_support import load_fixture


def _bars(figure: Figure) -> list[Rectangle]:
    ax = figure.axes[0]
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _driver(name: str | None, promoters: int, detractors: int, p_rev: float, d_rev: float):
    return DriverMetrics(
        driver=name,
        respondents=promoters + detractors,
        promoters=promoters,
        passives=0,
        detractors=detractors,
        nps=None,
        promoter_revenue=p_rev,
        passive_revenue=0.0,
        detractor_revenue=d_rev,
        revenue_nps=None,
    )


DRIVERS = [
    _driver("Account Management", 3, 1, 4_000_000.0, 1_200_000.0),
    _driver("Self-Service", 2, 6, 150_000.0, 90_000.0),
]


@pytest.mark.parametrize(
    ("weighting", "promoters", "detractors"),
    [("count", [3, 2], [1, 6]), ("revenue", [4_000_000.0, 150_000.0], [1_200_000.0, 90_000.0])],
)
def test_driver_bars_are_promoters_right_detractors_left(
    weighting: charts.Weighting, promoters: list[float], detractors: list[float]
) -> None:
    bars = _bars(charts.driver_figure(DRIVERS, weighting))
    right = [b for b in bars if to_hex(b.get_facecolor()) == COLORS["promoter"]]
    left = [b for b in bars if to_hex(b.get_facecolor()) == COLORS["detractor"]]
    assert [b.get_width() for b in right] == promoters
    assert [b.get_width() for b in left] == [-d for d in detractors]
    # the document's order, first driver on top
    assert right[0].get_y() > right[1].get_y()


def test_driver_bar_labels_use_the_one_formatter() -> None:
    ax = charts.driver_figure(DRIVERS, "revenue").axes[0]
    labels = {t.get_text() for t in ax.texts}
    assert {"4,000,000", "1,200,000", "150,000", "90,000"} <= labels
    ticks = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()), strict=True))
    assert [ticks[y] for y in sorted(ticks, reverse=True)] == ["Account Management", "Self-Service"]


def test_no_driver_answers_render_a_named_stand_in() -> None:
    ax = charts.driver_figure([_driver(None, 1, 0, 10.0, 0.0)], "count").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["(no driver)"]
    empty = charts.driver_figure([], "count").axes[0]
    assert [t.get_text() for t in empty.texts] == ["no counted answers"]


def test_pair_figure_has_both_weightings() -> None:
    figure = charts.drivers_pair_figure(DRIVERS)
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles == ["By number of answers", "By revenue behind the answers"]


def test_coverage_iceberg_splits_at_the_waterline() -> None:
    p = load_fixture("three-accounts").doc.portfolio  # 2 of 3 accounts, 70 % of revenue
    bars = _bars(charts.coverage_figure(p))
    covered = [b for b in bars if to_hex(b.get_facecolor()) == COLORS["covered"]]
    blind = [b for b in bars if to_hex(b.get_facecolor()) == COLORS["blind"]]
    assert [b.get_height() for b in covered] == [p.account_coverage, p.revenue_coverage]
    assert [round(b.get_height(), 12) for b in blind] == [round(-1 / 3, 12), -0.3]
    texts = " ".join(t.get_text() for t in charts.coverage_figure(p).axes[0].texts)
    assert "waterline" in texts


def test_tier_cells_are_coloured_by_tier_nps_and_grey_when_silent() -> None:
    doc = load_fixture("three-accounts").doc
    rows = figures.tier_rows(doc, 10)
    ax = charts.tier_figure(rows).axes[0]
    cells = {
        (int(r.get_y()), int(r.get_x())): to_hex(r.get_facecolor())
        for r in ax.patches
        if isinstance(r, Rectangle) and r.get_fill() and r.get_width() == 1
    }
    colormap = mpl.colormaps["RdYlGn"]
    # row 0 is Alpha (executive -100, management 100, frontline 100); row 1 Gamma: silent
    assert cells[(0, 0)] == to_hex(colormap(0.0))
    assert cells[(0, 1)] == to_hex(colormap(1.0))
    assert {cells[(1, j)] for j in range(3)} == {COLORS["none"]}
    outlines = [r for r in ax.patches if isinstance(r, Rectangle) and not r.get_fill()]
    assert sorted(int(r.get_y()) for r in outlines) == [0, 2]  # Alpha and Beta misaligned


def test_tier_map_shows_only_the_top_accounts() -> None:
    doc = load_fixture("seed_example").doc
    rows = figures.tier_rows(doc, 7)
    labels = [t.get_text() for t in charts.tier_figure(rows).axes[0].get_yticklabels()]
    assert labels == [a.name for a in doc.accounts[:7]]


def test_upsell_dots_sit_at_nps_and_share_of_potential() -> None:
    portfolio = load_fixture("three-accounts")
    points = figures.upsell_points(portfolio.doc, portfolio.accounts)
    assert [(p.account.id, p.realised, p.nps) for p in points] == [
        ("A2", 0.25, portfolio.expected["accounts"][2]["nps"])
    ]
    ax = charts.upsell_figure(points, 50.0, 0.5).axes[0]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    offsets = [tuple(o) for c in dots for o in c.get_offsets()]
    assert offsets == [(0.25, pytest.approx(71.42857142857143))]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    horizontal, vertical = dashed
    assert list(horizontal.get_ydata()) == [50.0, 50.0]  # the NPS threshold
    assert list(vertical.get_xdata()) == [0.5, 0.5]  # the revenue-share threshold


def test_upsell_without_potentials_says_so() -> None:
    portfolio = load_fixture("seed_example")  # no account has a revenue potential
    assert figures.upsell_points(portfolio.doc, portfolio.accounts) == []
    ax = charts.upsell_figure([], 50.0, 0.5).axes[0]
    assert "no account has both an NPS and a revenue potential" in ax.texts[0].get_text()


def test_svg_is_an_inlineable_element_with_an_escaped_label() -> None:
    svg = to_svg(lambda: charts.driver_figure(DRIVERS, "count"), "drivers-count", 'a "b" <c>')
    assert svg.startswith('<svg role="img" aria-label="a &quot;b&quot; &lt;c&gt;"')
    assert "<?xml" not in svg
    assert "<!DOCTYPE" not in svg
    assert "<text" in svg  # text stays text: searchable and small


def test_svg_output_is_repeatable_and_ids_are_salted_per_chart() -> None:
    def build() -> Figure:
        return charts.driver_figure(DRIVERS, "count")

    first = to_svg(build, "one", "label")
    assert first == to_svg(build, "one", "label")
    other = to_svg(build, "two", "label")
    ids_one = set(re.findall(r'id="([mp][0-9a-f]{10})"', first))
    ids_two = set(re.findall(r'id="([mp][0-9a-f]{10})"', other))
    assert ids_one
    assert not ids_one & ids_two


def test_drivers_png_is_a_wide_png_image() -> None:
    data = drivers_png(DRIVERS)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    assert width > height > 100


def test_digest_text_lists_every_headline_figure_escaped() -> None:
    doc = load_fixture("three-accounts").doc
    text = digest_text(doc, title="Weekly <AX> & co")
    lines = text.splitlines()
    assert lines[0].startswith("*Weekly &lt;AX&gt; &amp; co* (figures as of 2025-06-01 12:00 UTC)")
    assert lines[1:] == [
        "• NPS: *35.7* (14 respondents)",
        "• Strict NPS: *26.7* (silent contacts count)",
        "• Revenue-weighted NPS: *10.2* (weighted by account revenue)",
        "• Account coverage: *66.7 %* (2 of 3 accounts)",
        "• Revenue coverage: *70.0 %* (700,000 of 1,000,000)",
        "• Response rate: *85.7 %* (6 of 7 contacts)",
        "• Closed-loop rate: *25.0 %* (1 of 4 detractors in time)",
        "• At-risk revenue: *600,000* (1 account at risk)",
    ]


def test_plotted_points_keep_every_candidate_then_the_largest() -> None:
    revenues = [6000.0, 5000.0, 4000.0, 3000.0, 2000.0, 1000.0]
    potentials = [6000.0, 5000.0, 4000.0, 3000.0, 5000.0, 10000.0]  # A4, A5 are candidates
    accounts = [
        account(f"A{i}", rev, potential=pot)
        for i, (rev, pot) in enumerate(zip(revenues, potentials, strict=True))
    ]
    contacts = [contact(f"C{i}", f"A{i}", f"c{i}@a{i}.example", title="CEO") for i in range(6)]
    answers = [response(f"r{i}", f"c{i}@a{i}.example", 10, at=days_ago(3)) for i in range(6)]
    doc = compute_document(accounts, contacts, answers, as_of=days_ago(0), config=MetricsConfig())
    points = figures.upsell_points(doc, accounts)
    assert len(points) == 6
    shown = figures.plotted_points(points, 3)
    assert [p.account.id for p in shown] == ["A5", "A4", "A0"]
    assert [p.account.id for p in figures.plotted_points(points, 10)][:3] == ["A5", "A4", "A0"]

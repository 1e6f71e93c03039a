"""The report tells people what they need to trust it: readable times, every row left out
with its reason and value, numbers that never break across lines, named upsell dots."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from agent.core.models import Dropped
from agent.report import ReportOptions, build_report
from agent.report.present import readable_date, readable_time
from tests.report_support import by_id, load_fixture, parse_strict, text_of

CSS = Path(__file__).resolve().parents[1] / "agent" / "report" / "templates" / "report.css"


def test_times_read_as_a_person_writes_them() -> None:
    assert readable_time(datetime(2026, 6, 1, 12, 0, tzinfo=UTC)) == "1 June 2026, 12:00 UTC"
    assert readable_date(datetime(2026, 6, 1, 23, 30, tzinfo=UTC)) == "1 June 2026"
    fixture = load_fixture("three-accounts")
    page = build_report(fixture.doc, fixture.accounts, ReportOptions())
    header = text_of(next(e for e in parse_strict(page).iter() if e.tag == "header"))
    assert "Figures as of 1 June 2025, 12:00 UTC" in header
    assert "2025-06-01T12:00:00+00:00" not in header


def test_the_appendix_lists_every_row_left_out_with_reason_and_value() -> None:
    fixture = load_fixture("three-accounts")
    dropped = [Dropped("contacts.csv", 7, "missing_email")]
    doc = replace(fixture.doc, dropped=dropped)
    tree = parse_strict(build_report(doc, fixture.accounts, ReportOptions()))
    rows = [
        " | ".join(text_of(cell) for cell in tr) for tr in by_id(tree, "appendix-table").iter("tr")
    ][1:]
    assert len(rows) == len(doc.rejected) + len(dropped) + len(doc.unmatched)
    assert 'rejected | responses.csv record 19 | invalid_score | "11"' in rows
    assert 'rejected | responses.csv record 34 | invalid_score | ""' in rows  # an empty score
    assert "dropped | contacts.csv record 7 | missing_email | -" in rows
    assert "unmatched | answer r12 | free_mail_domain | y@gmail.com" in rows


def test_a_figure_never_wraps_in_its_card() -> None:
    css = CSS.read_text(encoding="utf-8")
    rule = re.search(r"\.headline \.value \{([^}]*)\}", css)
    assert rule is not None
    assert re.search(r"\.task-card \.value, \.headline \.value \{", css)  # task cards too
    assert "white-space: nowrap" in rule.group(1)
    assert "overflow-wrap: anywhere" not in rule.group(1)


def test_every_upsell_dot_names_its_account_on_hover() -> None:
    fixture = load_fixture("three-accounts")
    tree = parse_strict(build_report(fixture.doc, fixture.accounts, ReportOptions()))
    groups = {
        g.get("id"): g for g in tree.iter() if g.get("id") in ("upsell-candidates", "upsell-others")
    }
    assert "upsell-candidates" in groups
    titles = {
        gid: ["".join(t.itertext()) for t in g.iter() if t.tag.endswith("title")]
        for gid, g in groups.items()
    }
    assert titles["upsell-candidates"] == ["Beta GmbH: NPS 71.4, 25 % of potential"]
    group = groups["upsell-candidates"]
    in_defs = [t for d in group.iter() if d.tag.endswith("defs") for t in d.iter()]
    assert not [t for t in in_defs if t.tag.endswith("title")]  # on the dots, not the shape
    drawn = [e for e in group.iter() if e.tag.endswith(("path", "use")) and e not in in_defs]
    assert len(drawn) == len(titles["upsell-candidates"])  # one title on each dot


def test_iceberg_labels_do_not_overlap_at_full_coverage() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from agent.report.charts import coverage_figure
    from agent.report.render import chart_style

    p = load_fixture("three-accounts").doc.portfolio
    full = replace(
        p,
        accounts_with_feedback=p.accounts,
        account_coverage=1.0,
        covered_revenue=p.total_revenue,
        revenue_coverage=1.0,
    )
    with chart_style("coverage"):
        figure = coverage_figure(full)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
    ax = figure.axes[0]
    renderer = canvas.get_renderer()
    waterline = ax.transData.transform((0, 0))[1]
    boxes = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts if t.get_text()}
    below = [b for text, b in boxes.items() if "without" in text or "unseen" in text]
    above = [b for text, b in boxes.items() if "with feedback" in text or "covered" in text]
    assert len(below) == 2
    assert len(above) == 2
    assert all(b.y1 <= waterline for b in below)  # under the waterline, not on the bars
    assert all(b.y0 >= waterline for b in above)
    labels = below + above
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not a.overlaps(b)


def test_the_heat_map_shows_each_tier_respondent_count_beside_its_nps() -> None:
    from agent.report import charts, figures

    doc = load_fixture("three-accounts").doc
    rows = figures.tier_rows(doc, 10)
    alpha = rows[0]
    answered = {
        tier: sum(
            1
            for c in doc.contacts
            if c.account_id == alpha.account.id and c.tier == tier and c.nps_category is not None
        )
        for tier in alpha.tier_nps
    }
    assert dict(alpha.tier_respondents) == answered
    texts = [t.get_text() for t in charts.tier_figure(rows).axes[0].texts]
    assert "-100.0 (1)" in texts  # Alpha's executive: NPS -100 from one respondent
    assert "no answer" in texts

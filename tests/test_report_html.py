"""The report page: parses strictly, holds the document's figures, one SVG per chart."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

import pytest

from agent.core.compute import compute_document
from agent.core.contract import MetricsConfig
from agent.report import CHART_IDS, ReportOptions, build_report
from tests.core_builders import account, contact, days_ago, response
from tests.report_support import SVG, Portfolio, by_id, load_fixture, parse_strict, text_of

SF_TEMPLATE = "https://acme.my.salesforce.com/lightning/r/Account/{id}/view"

#: Headline key -> how the test itself expects it shown (independent of the code's helper).
HEADLINE_KEYS = {
    "nps": "points",
    "nps_strict": "points",
    "revenue_weighted_nps": "points",
    "account_coverage": "ratio",
    "revenue_coverage": "ratio",
    "response_rate": "ratio",
    "closed_loop_rate": "ratio",
    "at_risk_revenue": "money",
}


def expected_text(kind: str, value: float | None) -> str:
    if value is None:
        return "-"
    if kind == "points":
        return f"{value:.1f}"
    if kind == "ratio":
        return f"{value * 100:.1f} %"
    return f"{value:,.0f}"


def headline_cards(tree: Element) -> dict[str, Element]:
    cards = [e for e in tree.iter("div") if "headline" in (e.get("class") or "").split()]
    return {card.get("data-key", ""): card for card in cards}


@pytest.fixture(scope="module", params=["three-accounts", "seed_example"])
def fixture_report(request: pytest.FixtureRequest) -> tuple[Portfolio, str]:
    portfolio = load_fixture(request.param)
    options = ReportOptions(record_url=SF_TEMPLATE, source=request.param)
    return portfolio, build_report(portfolio.doc, portfolio.accounts, options)


def test_page_parses_without_a_single_html_error(fixture_report: tuple[Portfolio, str]) -> None:
    _, page = fixture_report
    tree = parse_strict(page)
    assert tree.find(".//title") is not None
    assert page.startswith("<!DOCTYPE html>")


def test_every_headline_figure_shows_the_documents_value(
    fixture_report: tuple[Portfolio, str],
) -> None:
    portfolio, page = fixture_report
    expected = portfolio.expected["portfolio"]
    cards = headline_cards(parse_strict(page))
    assert list(cards) == list(HEADLINE_KEYS)
    for key, kind in HEADLINE_KEYS.items():
        card = cards[key]
        value = next(d for d in card.iter("div") if d.get("class") == "value")
        assert text_of(value) == expected_text(kind, expected[key]), key
        if expected[key] is None:
            assert card.get("data-value") is None
        else:  # the unrounded number travels with the card, equal to the document's
            assert float(card.get("data-value", "nan")) == expected[key], key


def test_one_svg_per_chart_and_no_other(fixture_report: tuple[Portfolio, str]) -> None:
    _, page = fixture_report
    tree = parse_strict(page)
    for chart_id in CHART_IDS:
        figure = by_id(tree, f"chart-{chart_id}")
        svgs = list(figure.iter(f"{SVG}svg"))
        assert len(svgs) == 1, chart_id
        assert svgs[0].get("data-chart") == chart_id
        assert svgs[0].get("viewBox")
    assert len(list(tree.iter(f"{SVG}svg"))) == len(CHART_IDS)


def test_self_contained_no_script_no_external_resource(
    fixture_report: tuple[Portfolio, str],
) -> None:
    _, page = fixture_report
    tree = parse_strict(page)
    assert not list(tree.iter("script"))
    assert not list(tree.iter("link"))
    assert not list(tree.iter("img"))
    assert not list(tree.iter(f"{SVG}image"))
    assert "url(http" not in page
    assert "@import" not in page
    for element in tree.iter():
        for name in ("src", "href", "{http://www.w3.org/1999/xlink}href"):
            target = element.get(name) or ""
            # only links to CRM records (anchors) and in-SVG references (#id) are allowed
            assert element.tag == "a" or target.startswith("#") or not target, target


def test_driver_table_holds_every_driver_figure(fixture_report: tuple[Portfolio, str]) -> None:
    portfolio, page = fixture_report
    rows = by_id(parse_strict(page), "drivers-table").findall(".//tbody/tr")
    assert len(rows) == len(portfolio.expected["drivers"])
    for row, driver in zip(rows, portfolio.expected["drivers"], strict=True):
        cells = [text_of(td) for td in row.findall("td")]
        assert cells[0] == (driver["driver"] or "(no driver)")
        assert cells[1:5] == [
            str(driver[k]) for k in ("respondents", "promoters", "passives", "detractors")
        ]
        assert cells[5] == expected_text("points", driver["nps"])
        assert cells[6] == expected_text("money", driver["promoter_revenue"])
        assert cells[8] == expected_text("money", driver["detractor_revenue"])
        assert cells[9] == expected_text("points", driver["revenue_nps"])


def test_driver_charts_label_bars_with_counts_and_revenue() -> None:
    portfolio = load_fixture("three-accounts")
    tree = parse_strict(build_report(portfolio.doc, portfolio.accounts))
    count_text = text_of(by_id(tree, "chart-drivers-count"))
    revenue_text = text_of(by_id(tree, "chart-drivers-revenue"))
    support = next(d for d in portfolio.expected["drivers"] if d["driver"] == "Support")
    product = next(d for d in portfolio.expected["drivers"] if d["driver"] == "Product")
    # Support: 4 promoters / 1 detractor by count, but Product carries the detractor money
    assert "By number of answers" in count_text
    assert "By revenue behind the answers" in revenue_text
    assert expected_text("money", support["promoter_revenue"]) in revenue_text
    assert expected_text("money", product["detractor_revenue"]) in revenue_text
    assert "(no driver)" in count_text


def test_at_risk_and_overdue_lists_link_to_crm_records() -> None:
    portfolio = load_fixture("three-accounts")
    options = ReportOptions(record_url=SF_TEMPLATE)
    tree = parse_strict(build_report(portfolio.doc, portfolio.accounts, options))
    expected_at_risk = [a for a in portfolio.expected["accounts"] if a["at_risk"]]
    expected_overdue = [a for a in portfolio.expected["accounts"] if a["overdue_detractors"]]
    for table_id, accounts in (
        ("at-risk-table", expected_at_risk),
        ("overdue-table", expected_overdue),
    ):
        rows = by_id(tree, table_id).findall(".//tbody/tr")
        assert len(rows) == len(accounts) > 0
        for row, acct in zip(rows, accounts, strict=True):
            anchor = row.find(".//a")
            assert anchor is not None
            assert text_of(anchor) == acct["name"]
            assert anchor.get("href") == SF_TEMPLATE.replace("{id}", acct["id"])
    overdue_cells = [text_of(td) for td in by_id(tree, "overdue-table").findall(".//tbody/tr/td")]
    assert overdue_cells[1] == str(expected_overdue[0]["overdue_detractors"])
    assert "an executive is a detractor" in text_of(by_id(tree, "at-risk-table"))


def test_without_a_record_template_accounts_are_plain_text() -> None:
    portfolio = load_fixture("three-accounts")
    tree = parse_strict(build_report(portfolio.doc, portfolio.accounts))
    assert not list(tree.iter("a"))
    assert "Alpha, Inc." in text_of(by_id(tree, "at-risk-table"))


def test_account_ids_are_percent_encoded_into_links() -> None:
    accounts = [account("0012/x y?", 900.0, name="Odd Id Ltd")]
    contacts = [contact("C1", "0012/x y?", "cfo@odd.example", title="CFO")]
    answers = [response("r1", "cfo@odd.example", 2, at=days_ago(9))]
    doc = compute_document(accounts, contacts, answers, as_of=days_ago(0), config=MetricsConfig())
    page = build_report(doc, accounts, ReportOptions(record_url="https://crm.example/a/{id}"))
    anchors = list(by_id(parse_strict(page), "at-risk-table").iter("a"))
    assert [a.get("href") for a in anchors] == ["https://crm.example/a/0012%2Fx%20y%3F"]


def test_tier_map_marks_misaligned_accounts_and_shows_tier_nps() -> None:
    portfolio = load_fixture("three-accounts")
    tree = parse_strict(build_report(portfolio.doc, portfolio.accounts))
    tiers = text_of(next(by_id(tree, "chart-tiers").iter(f"{SVG}svg")))
    misaligned = [a for a in portfolio.expected["accounts"] if a["tier_misaligned"]]
    assert tiers.count("misaligned") == len(misaligned) == 2
    for name in ("Alpha, Inc.", "Beta GmbH", "Gamma AG"):
        assert name in tiers
    assert "-100.0" in tiers
    assert "100.0" in tiers
    assert "no answer" in tiers  # Gamma AG: no tier answered


def test_upsell_quadrant_names_candidates_and_lists_them() -> None:
    portfolio = load_fixture("three-accounts")
    tree = parse_strict(build_report(portfolio.doc, portfolio.accounts))
    quadrant = text_of(by_id(tree, "chart-upsell"))
    assert "Beta GmbH" in quadrant  # the one candidate: NPS 71.4, revenue 25 % of potential
    rows = by_id(tree, "upsell-table").findall(".//tbody/tr")
    assert [text_of(r.findall("td")[0]) for r in rows] == ["Beta GmbH"]
    assert [text_of(td) for td in rows[0].findall("td")][1:] == ["100,000", "400,000", "71.4"]


def test_names_with_markup_are_escaped_everywhere() -> None:
    hostile = '<script>alert("x")</script> & $x$'
    accounts = [account("A1", 500.0, potential=5000.0, name=hostile)]
    contacts = [contact("C1", "A1", "ceo@a.example", title="CEO")]
    answers = [response("r1", "ceo@a.example", 10, driver="<b>Support</b>", at=days_ago(5))]
    doc = compute_document(accounts, contacts, answers, as_of=days_ago(0), config=MetricsConfig())
    page = build_report(doc, accounts, ReportOptions(record_url="https://crm.example/{id}"))
    tree = parse_strict(page)
    assert not list(tree.iter("script"))
    assert not list(tree.iter("b"))
    assert hostile in text_of(by_id(tree, "upsell-table"))
    assert "<b>Support</b>" in text_of(by_id(tree, "drivers-table"))
    assert "<b>Support</b>" in text_of(by_id(tree, "chart-drivers-count"))


def test_empty_portfolio_still_renders_every_chart() -> None:
    doc = compute_document([], [], [], as_of=days_ago(0), config=MetricsConfig())
    tree = parse_strict(build_report(doc))
    for chart_id in CHART_IDS:
        assert len(list(by_id(tree, f"chart-{chart_id}").iter(f"{SVG}svg"))) == 1
    assert text_of(headline_cards(tree)["nps"]).startswith("NPS -")
    assert "No account is at risk." in text_of(by_id(tree, "at-risk"))


def test_long_lists_are_capped_with_a_pointer_to_the_rest() -> None:
    accounts = [account(f"A{i:02d}", 1000.0 - i) for i in range(5)]
    contacts = [contact(f"C{i}", f"A{i:02d}", f"c{i}@x{i}.example", title="CEO") for i in range(5)]
    answers = [response(f"r{i}", f"c{i}@x{i}.example", 0, at=days_ago(10)) for i in range(5)]
    doc = compute_document(accounts, contacts, answers, as_of=days_ago(0), config=MetricsConfig())
    page = build_report(doc, accounts, ReportOptions(list_limit=2))
    tree = parse_strict(page)
    assert len(by_id(tree, "at-risk-table").findall(".//tbody/tr")) == 2
    assert "and 3 more" in text_of(by_id(tree, "at-risk"))
    assert len(by_id(tree, "overdue-table").findall(".//tbody/tr")) == 2


def test_output_is_repeatable_and_chart_ids_do_not_collide() -> None:
    portfolio = load_fixture("three-accounts")
    first = build_report(portfolio.doc, portfolio.accounts)
    assert first == build_report(portfolio.doc, portfolio.accounts)
    ids = re.findall(r'\bid="([^"]+)"', first)
    svg_defs = [i for i in ids if re.fullmatch(r"[mp][0-9a-f]{10}", i)]
    assert svg_defs
    assert len(svg_defs) == len(set(svg_defs))


def test_print_stylesheet_is_inlined() -> None:
    portfolio = load_fixture("three-accounts")
    page = build_report(portfolio.doc, portfolio.accounts)
    style = parse_strict(page).find(".//style")
    assert style is not None
    css = style.text or ""
    assert "@media print" in css
    assert "break-inside: avoid" in css

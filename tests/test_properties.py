"""Invariants of the metric contract on generated portfolios (hypothesis)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core.compute import compute_document
from agent.core.document import MetricsDocument
from agent.core.models import Account, Contact, Response
from tests.core_builders import AS_OF

DOMAINS = ["a.com", "b.com", "shared.com", "gmail.com", "c.org"]
DRIVERS = [None, "", "Support", " Support ", "Product", "pricing"]
TITLES = ["", "CEO", "Head of IT", "Engineer", "VP Sales", "Analyst"]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def portfolios(
    draw: st.DrawFn, unique_emails: bool = False
) -> tuple[list[Account], list[Contact], list[Response]]:
    n_accounts = draw(st.integers(0, 6))
    accounts = [
        Account(
            id=f"A{i}",
            name=f"Account {i}",
            domains=tuple(draw(st.lists(st.sampled_from(DOMAINS), max_size=2))),
            revenue=draw(st.one_of(st.just(0.0), st.floats(0, 1e9, allow_nan=False))),
            revenue_potential=draw(st.one_of(st.none(), st.floats(0, 2e9, allow_nan=False))),
        )
        for i in range(n_accounts)
    ]
    account_ids = [a.id for a in accounts] + ["GONE"]
    emails = [f"p{i}@{d}" for i in range(4) for d in DOMAINS]
    contacts: list[Contact] = []
    for j in range(draw(st.integers(0, 12))):
        email = draw(st.one_of(st.none(), st.sampled_from(emails)))
        if unique_emails and email is not None:
            email = f"c{j}.{email}"
        contacts.append(
            Contact(
                id=f"C{j}",
                account_id=draw(st.sampled_from(account_ids)),
                email=email,
                title=draw(st.sampled_from(TITLES)),
                crm_tier=draw(st.sampled_from([None, "executive", "frontline", "bogus"])),
            )
        )
    contact_emails = [c.email for c in contacts if c.email]
    responses = [
        Response(
            response_id=draw(st.sampled_from(["r1", "r2", "r3", "r10", "x"])) + f"-{k}",
            email=draw(st.one_of(st.none(), st.sampled_from(emails + contact_emails))),
            score=draw(st.integers(0, 10)),
            submitted_at=AS_OF - timedelta(seconds=draw(st.integers(-10, 400 * 86_400))),
            driver=draw(st.sampled_from(DRIVERS)),
            account_hint=draw(st.one_of(st.none(), st.sampled_from(account_ids))),
            loop_closed_at=draw(
                st.one_of(st.none(), st.just(AS_OF - timedelta(days=1)), st.just(AS_OF))
            ),
            source=draw(st.sampled_from(["responses.csv", "responses.jsonl"])),
        )
        for k in range(draw(st.integers(0, 25)))
    ]
    return accounts, contacts, responses


def compute(portfolio: tuple[list[Account], list[Contact], list[Response]]) -> MetricsDocument:
    accounts, contacts, responses = portfolio
    return compute_document(accounts, contacts, responses, as_of=AS_OF)


def _in(value: float | None, low: float, high: float) -> bool:
    return value is None or low - 1e-9 <= value <= high + 1e-9


@SETTINGS
@given(portfolios())
def test_coverage_figures_lie_in_zero_one(portfolio: Any) -> None:
    document = compute(portfolio)
    p = document.portfolio
    for value in (p.account_coverage, p.revenue_coverage, p.response_rate, p.closed_loop_rate):
        assert _in(value, 0, 1)
    for a in document.accounts:
        assert _in(a.contact_coverage, 0, 1)
        assert _in(a.tier_coverage, 0, 1)
        assert _in(a.health_score, 0, 100)
        assert _in(a.recency_score, 0, 100)


@SETTINGS
@given(portfolios())
def test_every_nps_lies_in_minus_100_to_100(portfolio: Any) -> None:
    document = compute(portfolio)
    p = document.portfolio
    values = [p.nps, p.nps_strict, p.revenue_weighted_nps]
    for a in document.accounts:
        values += [a.nps, a.nps_strict, *a.tier_nps.values()]
    for d in document.drivers:
        values += [d.nps, d.revenue_nps]
    assert all(_in(v, -100, 100) for v in values)


@SETTINGS
@given(portfolios())
def test_driver_revenue_sums_to_covered_revenue(portfolio: Any) -> None:
    document = compute(portfolio)
    total = sum(
        d.promoter_revenue + d.passive_revenue + d.detractor_revenue for d in document.drivers
    )
    assert math.isclose(total, document.portfolio.covered_revenue, rel_tol=1e-9, abs_tol=1e-6)
    respondents = sum(d.respondents for d in document.drivers)
    assert respondents == sum(a.respondents for a in document.accounts)


@SETTINGS
@given(portfolios(), st.data())
def test_a_respondent_counts_at_most_once(portfolio: Any, data: st.DataObject) -> None:
    document = compute(portfolio)
    p = document.portfolio
    assert p.responded_contacts <= p.contacts
    assert sum(a.respondents for a in document.accounts) <= len(portfolio[2])
    for a in document.accounts:
        assert a.respondents == a.promoters + a.passives + a.detractors
        assert a.overdue_detractors <= a.open_detractors <= a.detractors


@SETTINGS
@given(portfolios(unique_emails=True), st.randoms(use_true_random=False))
def test_permuting_input_rows_changes_nothing(portfolio: Any, rng: Any) -> None:
    accounts, contacts, responses = (list(part) for part in portfolio)
    before = compute((accounts, contacts, responses))
    for part in (accounts, contacts, responses):
        rng.shuffle(part)
    after = compute((accounts, contacts, responses))
    assert after.to_json_obj() == before.to_json_obj()
    key = lambda f: f.contact_id  # noqa: E731
    assert sorted(after.contacts, key=key) == sorted(before.contacts, key=key)

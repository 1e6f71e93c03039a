"""The coverage plan, step by step, on a hand-computed portfolio (docs/metrics.md)."""

from __future__ import annotations

import pytest

from agent.core.compute import compute_with_matches
from agent.core.contract import MetricsConfig
from agent.core.plan import (
    CoveragePlan,
    PlannedContact,
    PlanOptions,
    account_chance,
    coverage_plan,
    pick_contacts,
)
from tests.core_builders import AS_OF, account, contact, days_ago, response

#: A 30-day window, so a contact who answered 60 days ago is not counted (the account
#: stays uncovered) but is still inside the default 90 fatigue days.
CONFIG = MetricsConfig(window_days=30)

ACCOUNTS = [
    account("A1", 1000),  # covered by its executive
    account("A2", 800),
    account("A3", 600),  # only a contact without an email
    account("A4", 600),  # same revenue as A3: id decides
    account("A5", 0),  # revenue 0: never planned
    account("A6", 400),
]
CONTACTS = [
    contact("C1e", "A1", "e@a1.example", title="CEO"),
    contact("C1m", "A1", "m@a1.example", title="Head of IT"),
    contact("C1f", "A1", "f@a1.example", title="Engineer"),
    contact("C2e", "A2", "e@a2.example", title="VP Sales"),
    contact("C2m2", "A2", "m2@a2.example", title="Director"),
    contact("C2m1", "A2", "m1@a2.example", title="Manager"),
    contact("C2f", "A2", "f@a2.example", title="Analyst"),
    contact("C2u", "A2", "u@a2.example"),
    contact("C3x", "A3", None, title="CEO"),
    contact("C4f", "A4", "f@a4.example", title="Analyst"),
    contact("C4m", "A4", "m@a4.example", title="Manager"),
    contact("C5f", "A5", "f@a5.example", title="Analyst"),
    contact("C6u", "A6", "u@a6.example"),
]
RESPONSES = [
    response("r1", "e@a1.example", 10, at=days_ago(5)),
    response("r2", "f@a4.example", 5, at=days_ago(60)),  # out of the window, in the fatigue
]


def _plan(options: PlanOptions | None = None) -> CoveragePlan:
    document, matches = compute_with_matches(
        ACCOUNTS, CONTACTS, RESPONSES, as_of=AS_OF, config=CONFIG
    )
    return coverage_plan(document, ACCOUNTS, CONTACTS, matches, options)


def _ids(contacts: list[PlannedContact]) -> list[str]:
    return [c.id for c in contacts]


def test_walks_uncovered_accounts_by_revenue_then_id_until_the_target() -> None:
    plan = _plan()
    assert [a.id for a in plan.accounts] == ["A2", "A4", "A6"]
    assert plan.skipped == [("A3", "no_eligible_contact")]
    assert [a.cumulative_coverage for a in plan.accounts] == pytest.approx(
        [1800 / 3400, 2400 / 3400, 2800 / 3400]
    )
    assert plan.coverage_now == pytest.approx(1000 / 3400)
    assert plan.coverage_planned == pytest.approx(2800 / 3400)


def test_stops_at_the_first_account_that_reaches_the_target() -> None:
    # 1800 / 3400 = 0.529: A2 alone reaches a target of 0.5, nothing after it is planned.
    plan = _plan(PlanOptions(target=0.5))
    assert [a.id for a in plan.accounts] == ["A2"]
    assert plan.skipped == []


def test_a_target_already_met_plans_nothing() -> None:
    plan = _plan(PlanOptions(target=0.25))
    assert plan.accounts == []
    assert plan.coverage_planned == pytest.approx(plan.coverage_now)


def test_revenue_zero_is_never_planned_even_below_the_target() -> None:
    plan = _plan(PlanOptions(target=1.0))
    assert "A5" not in [a.id for a in plan.accounts]
    assert "A5" not in [a for a, _ in plan.skipped]
    assert plan.coverage_planned == pytest.approx(2800 / 3400)


def test_one_contact_per_tier_first_then_tier_order_with_unknown_last() -> None:
    plan = _plan(PlanOptions(per_account=3))
    assert _ids(plan.accounts[0].contacts) == ["C2e", "C2m1", "C2f"]
    plan = _plan(PlanOptions(per_account=5))
    assert _ids(plan.accounts[0].contacts) == ["C2e", "C2m1", "C2f", "C2m2", "C2u"]
    assert [c.tier for c in plan.accounts[0].contacts] == [
        "executive",
        "management",
        "frontline",
        "management",
        "unknown",
    ]


def test_fatigue_excludes_contacts_who_answered_recently() -> None:
    assert _ids(_plan().accounts[1].contacts) == ["C4m"]
    relaxed = _plan(PlanOptions(fatigue_days=30))
    assert _ids(relaxed.accounts[1].contacts) == ["C4m", "C4f"]


def test_tier_gaps_of_the_largest_covered_accounts() -> None:
    gaps = _plan().tier_gaps
    assert [(g.account_id, g.missing_tiers, _ids(g.contacts)) for g in gaps] == [
        ("A1", ["management", "frontline"], ["C1m", "C1f"])
    ]
    assert _plan(PlanOptions(top=0)).tier_gaps == []


def test_forecast_by_hand() -> None:
    # r_executive = 1 counted of 2 with an email; management and frontline 0;
    # unknown: the overall response rate, 1 of 12 contacts with an email.
    plan = _plan()
    assert [a.chance for a in plan.accounts] == pytest.approx([0.5, 0.0, 1 / 12])
    expected = (1000 + 800 * 0.5 + 600 * 0.0 + 400 / 12) / 3400
    assert plan.coverage_expected == pytest.approx(expected)


def test_chance_is_one_minus_the_product_of_silences() -> None:
    rates = {"executive": 0.5, "management": 0.2, "frontline": 0.1, "unknown": 0.05}
    assert account_chance(["executive", "management", "frontline"], rates) == pytest.approx(
        1 - 0.5 * 0.8 * 0.9
    )
    assert account_chance([], rates) == 0.0


def test_pick_contacts_ties_go_to_the_lowest_id() -> None:
    eligible = [
        PlannedContact("m2", "m2@x", "management"),
        PlannedContact("m1", "m1@x", "management"),
        PlannedContact("u1", "u1@x", "unknown"),
        PlannedContact("f9", "f9@x", "frontline"),
    ]
    assert _ids(pick_contacts(eligible, 2)) == ["m1", "f9"]
    assert _ids(pick_contacts(eligible, 9)) == ["m1", "f9", "m2", "u1"]


def test_json_shape() -> None:
    doc = _plan().to_json_obj()
    assert list(doc) == [
        "as_of",
        "target",
        "coverage_now",
        "coverage_planned",
        "coverage_expected",
        "accounts",
        "tier_gaps",
        "skipped",
    ]
    first = doc["accounts"][0]
    assert list(first) == ["id", "name", "revenue", "cumulative_coverage", "chance", "contacts"]
    assert first["contacts"][0] == {"id": "C2e", "email": "e@a2.example", "tier": "executive"}
    assert doc["skipped"] == [{"account_id": "A3", "reason": "no_eligible_contact"}]
    assert doc["tier_gaps"][0]["missing_tiers"] == ["management", "frontline"]


def test_an_empty_or_revenueless_portfolio_plans_nothing() -> None:
    document, matches = compute_with_matches([account("Z", 0)], [], [], as_of=AS_OF)
    plan = coverage_plan(document, [account("Z", 0)], [], matches)
    assert plan.accounts == []
    assert plan.coverage_now is None
    assert plan.coverage_planned is None
    assert plan.coverage_expected is None

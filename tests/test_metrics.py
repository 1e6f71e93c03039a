"""Each figure of DOMAIN.md alone, with hand-computed values."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.core.contract import HealthConfig, MetricsConfig
from agent.core.metrics import (
    Counted,
    account_coverage,
    add_account_drivers,
    at_most,
    at_risk,
    closed_in_sla,
    closed_loop_rate,
    contact_coverage,
    driver_metrics,
    driver_name,
    health_score,
    health_status,
    in_window,
    is_later,
    latest_per_respondent,
    nps,
    nps_strict,
    open_detractors,
    overdue_detractors,
    ratio,
    reaches,
    recency_score,
    respondent_key,
    respondent_weight,
    response_rate,
    revenue_coverage,
    revenue_nps,
    revenue_weighted_nps,
    tier_coverage,
    tier_misaligned,
    tier_nps,
    tiers_covered,
    upsell_candidate,
)
from tests.core_builders import AS_OF, days_ago, response

CONFIG = MetricsConfig()
HEALTH = HealthConfig()

# --- thresholds -------------------------------------------------------------------------


def test_threshold_tolerance() -> None:
    assert reaches(49.99999999999999, 50)
    assert reaches(50 - 1e-10, 50)
    assert not reaches(50 - 1e-8, 50)
    assert at_most(0.5 + 1e-12, 0.5)
    assert not at_most(0.5 + 1e-8, 0.5)


def test_ratio_of_nothing_is_null() -> None:
    assert ratio(1, 0) is None
    assert ratio(0, 0) is None
    assert ratio(1, 4) == 0.25


# --- per account --------------------------------------------------------------------------


def test_nps() -> None:
    assert nps(3, 1, 5) == 40.0
    assert nps(0, 2, 2) == -100.0
    assert nps(0, 0, 3) == 0.0
    assert nps(0, 0, 0) is None


def test_nps_strict_counts_silent_contacts_as_detractors() -> None:
    # P=2, D=1, R=4 (1 passive), C=5 contacts with email, RC=3 of them answered:
    # 100·(2 - 1 - 2) / (4 + 2) = -16.67
    assert nps_strict(2, 1, 4, 5, 3) == pytest.approx(-100 / 6)
    assert nps_strict(0, 0, 0, 1, 0) == -100.0
    assert nps_strict(1, 0, 1, 0, 0) == 100.0
    assert nps_strict(0, 0, 0, 0, 0) is None


def test_contact_coverage() -> None:
    assert contact_coverage(1, 4) == 0.25
    assert contact_coverage(0, 0) is None


def test_tiers_covered_and_coverage() -> None:
    covered = tiers_covered({"management": 2, "executive": 1, "unknown": 5, "frontline": 0})
    assert covered == ["executive", "management"]
    assert tier_coverage(covered) == pytest.approx(2 / 3)
    assert tier_coverage([]) == 0.0


def test_tier_nps_leaves_out_empty_and_unknown_tiers() -> None:
    got = tier_nps({"executive": (0, 0, 1), "frontline": (2, 1, 1), "management": (0, 0, 0)})
    assert got == {"executive": -100.0, "frontline": 25.0}
    assert tier_nps({"unknown": (1, 0, 0)}) == {}


@pytest.mark.parametrize(
    ("scores", "misaligned"),
    [
        ({"executive": -100.0, "frontline": 100.0}, True),
        ({"executive": 0.0, "frontline": 50.0}, True),  # exactly the spread
        ({"executive": 0.0, "frontline": 49.99999999999999}, True),  # float noise
        ({"executive": 0.0, "frontline": 49.9}, False),
        ({"executive": 10.0, "management": 20.0, "frontline": 70.0}, True),  # max - min
        ({"frontline": 100.0}, False),  # one tier is never misaligned
        ({}, False),
    ],
)
def test_tier_misaligned(scores: dict[str, float], misaligned: bool) -> None:
    assert tier_misaligned(scores, 50.0) is misaligned


@pytest.mark.parametrize(
    ("age_days", "score"),
    [
        (0, 100.0),
        (90, 100.0),
        (90 + 27.5, 90.0),
        (227.5, 50.0),
        (364, 100 / 275),
        (365, 0.0),
        (400, 0.0),
    ],
)
def test_recency_score(age_days: float, score: float) -> None:
    assert recency_score(days_ago(age_days), AS_OF, CONFIG) == pytest.approx(score)


def test_recency_uses_fractional_days() -> None:
    half_a_day_later = days_ago(90) - timedelta(hours=12)
    assert recency_score(half_a_day_later, AS_OF, CONFIG) == pytest.approx(100 * 274.5 / 275)


def test_recency_without_response() -> None:
    assert recency_score(None, AS_OF, CONFIG) is None


def test_health_score_formula() -> None:
    # 0.6·(40+100)/2 + 0.25·100·(0.5 + 2/3)/2 + 0.15·80 = 42 + 14.583 + 12 = 68.583
    expected = 42 + 25 * (0.5 + 2 / 3) / 2 + 12
    got = health_score(40.0, 0.5, 2 / 3, 80.0, misaligned=False, config=HEALTH)
    assert got == pytest.approx(expected)
    misaligned = health_score(40.0, 0.5, 2 / 3, 80.0, misaligned=True, config=HEALTH)
    assert misaligned == pytest.approx(expected - 20)


def test_health_score_coverage_null_counts_as_zero() -> None:
    assert health_score(100.0, None, 1 / 3, 100.0, misaligned=False, config=HEALTH) == (
        pytest.approx(60 + 25 / 6 + 15)
    )


def test_health_score_is_clamped_and_null_without_feedback() -> None:
    assert health_score(-100.0, 0.0, 0.0, 0.0, misaligned=True, config=HEALTH) == 0.0
    over = HealthConfig(nps_weight=2.0)
    assert health_score(100.0, 1.0, 1.0, 100.0, misaligned=False, config=over) == 100.0
    assert health_score(None, None, 0.0, None, misaligned=False, config=HEALTH) is None


def test_health_weights_come_from_config() -> None:
    only_nps = HealthConfig(nps_weight=1.0, coverage_weight=0.0, recency_weight=0.0)
    assert health_score(20.0, 1.0, 1.0, 100.0, misaligned=False, config=only_nps) == 60.0


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (None, "no_feedback"),
        (100.0, "healthy"),
        (70.0, "healthy"),
        (69.99999999999999, "healthy"),
        (69.9, "neutral"),
        (40.0, "neutral"),
        (39.999999999999993, "neutral"),
        (39.9, "at_risk"),
        (0.0, "at_risk"),
    ],
)
def test_health_status(score: float | None, status: str) -> None:
    assert health_status(score, HEALTH) == status


def test_at_risk() -> None:
    assert at_risk("at_risk", executive_detractor=False)
    assert at_risk("healthy", executive_detractor=True)
    assert not at_risk("neutral", executive_detractor=False)
    assert not at_risk("no_feedback", executive_detractor=False)


def test_open_and_overdue_detractors() -> None:
    counted = [
        response("a", None, 6, at=AS_OF - timedelta(hours=48)),  # open, exactly at the SLA
        response("b", None, 3, at=AS_OF - timedelta(hours=48, seconds=1)),  # open, overdue
        response("c", None, 0, at=days_ago(10), closed=days_ago(9)),  # closed
        response("d", None, 7, at=days_ago(10)),  # passive
        response("e", None, 10, at=days_ago(10)),  # promoter
    ]
    assert open_detractors(counted) == 2
    assert overdue_detractors(counted, AS_OF, 48) == 1
    assert overdue_detractors(counted, AS_OF, 1) == 2


@pytest.mark.parametrize(
    ("nps_value", "revenue", "potential", "candidate"),
    [
        (50.0, 100.0, 200.0, True),  # revenue exactly half the potential, NPS exactly 50
        (49.99999999999999, 100.0, 200.0, True),
        (49.9, 100.0, 200.0, False),
        (80.0, 100.01, 200.0, False),
        (80.0, 0.0, 200.0, True),
        (80.0, 100.0, 0.0, False),
        (80.0, 100.0, None, False),
        (None, 100.0, 200.0, False),
        (80.0, 0.3, 0.6, True),  # 0.5·0.6 is not exactly 0.3 in floats
    ],
)
def test_upsell_candidate(
    nps_value: float | None, revenue: float, potential: float | None, candidate: bool
) -> None:
    assert upsell_candidate(nps_value, revenue, potential, CONFIG) is candidate


# --- portfolio ----------------------------------------------------------------------------


def test_portfolio_ratios() -> None:
    assert account_coverage(30, 250) == 0.12
    assert account_coverage(0, 0) is None
    assert revenue_coverage(300_000, 1_200_000) == 0.25
    assert revenue_coverage(0, 0) is None
    assert response_rate(40, 500) == 0.08
    assert response_rate(0, 0) is None
    assert closed_loop_rate(1, 4) == 0.25
    assert closed_loop_rate(0, 0) is None


def test_revenue_weighted_nps() -> None:
    assert revenue_weighted_nps([(600_000, 0.0), (100_000, 500 / 7), (300_000, None)]) == (
        pytest.approx(100_000 * 500 / 7 / 700_000)
    )
    assert revenue_weighted_nps([(0.0, 50.0)]) is None
    assert revenue_weighted_nps([(10.0, None)]) is None


def test_closed_in_sla() -> None:
    at = days_ago(5)
    assert closed_in_sla(at, at + timedelta(hours=48), 48)
    assert not closed_in_sla(at, at + timedelta(hours=48, seconds=1), 48)
    assert not closed_in_sla(at, None, 48)


# --- drivers ------------------------------------------------------------------------------


def test_driver_name_is_trimmed_case_kept_and_empty_is_null() -> None:
    assert driver_name(" Support\t") == "Support"
    assert driver_name("support") == "support"
    assert driver_name("  ") is None
    assert driver_name(None) is None


def test_revenue_nps_and_weight() -> None:
    assert revenue_nps(300.0, 100.0, 100.0) == 40.0
    assert revenue_nps(0.0, 0.0, 0.0) is None
    assert respondent_weight(700.0, 7) == 100.0
    assert respondent_weight(700.0, 0) == 0.0


def test_drivers_share_each_account_revenue_among_its_respondents() -> None:
    totals: dict[str | None, list[float]] = {}
    # Account of 600 with 3 respondents (w = 200): Support P, Support D, no driver N.
    add_account_drivers(totals, {"Support": [1, 0, 1], None: [0, 1, 0]}, 600.0, 3)
    # Account of 100 with 1 respondent (w = 100): Product P.
    add_account_drivers(totals, {"Product": [1, 0, 0]}, 100.0, 1)
    got = driver_metrics(totals)
    assert [d.driver for d in got] == ["Product", "Support", None]
    product, support, none = got
    assert (support.respondents, support.promoters, support.detractors) == (2, 1, 1)
    assert support.nps == 0.0
    assert (support.promoter_revenue, support.passive_revenue, support.detractor_revenue) == (
        200.0,
        0.0,
        200.0,
    )
    assert support.revenue_nps == 0.0
    assert none.passive_revenue == 200.0
    assert none.revenue_nps == 0.0
    assert product.revenue_nps == 100.0
    total = sum(d.promoter_revenue + d.passive_revenue + d.detractor_revenue for d in got)
    assert total == pytest.approx(700.0)


def test_drivers_sort_in_string_order() -> None:
    totals: dict[str | None, list[float]] = {}
    add_account_drivers(totals, {"b": [1, 0, 0], "B": [1, 0, 0], "a": [1, 0, 0]}, 3.0, 3)
    assert [d.driver for d in driver_metrics(totals)] == ["B", "a", "b"]


def test_driver_with_zero_revenue_has_null_revenue_nps() -> None:
    totals: dict[str | None, list[float]] = {}
    add_account_drivers(totals, {"x": [1, 0, 0]}, 0.0, 1)
    (entry,) = driver_metrics(totals)
    assert entry.nps == 100.0
    assert entry.revenue_nps is None


# --- counting -----------------------------------------------------------------------------


def test_window_edges_are_inclusive() -> None:
    assert in_window(AS_OF, AS_OF, 365)
    assert in_window(AS_OF - timedelta(days=365), AS_OF, 365)
    assert not in_window(AS_OF - timedelta(days=365, microseconds=1), AS_OF, 365)
    assert not in_window(AS_OF + timedelta(microseconds=1), AS_OF, 365)
    assert in_window(AS_OF - timedelta(seconds=30 * 86_400), AS_OF, 30)


def test_respondent_keys() -> None:
    assert respondent_key(response("r", "Ann@X.com", 9), 4) == 4
    assert respondent_key(response("r", " Ann@X.com ", 9), None) == "ann@x.com"
    own_a = respondent_key(response("r1", None, 9), None)
    own_b = respondent_key(response("r2", " ", 9), None)
    assert own_a != own_b


def test_latest_wins_and_ties_go_to_the_larger_response_id() -> None:
    at = days_ago(3)
    assert is_later(response("a", None, 9, at=at), response("b", None, 9, at=days_ago(4)))
    assert is_later(response("r10", None, 9, at=at), response("r09", None, 9, at=at))
    assert is_later(response("r9", None, 9, at=at), response("r10", None, 9, at=at))  # string order
    assert not is_later(response("r09", None, 9, at=at), response("r10", None, 9, at=at))


def test_latest_per_respondent() -> None:
    items = [
        Counted(response("old", "a@x.com", 2, at=days_ago(10)), "A", 0),
        Counted(response("new", "a@x.com", 9, at=days_ago(5)), "A", 0),
        Counted(response("out", "a@x.com", 9, at=days_ago(366)), "A", 0),
        Counted(response("z1", "Z@x.com", 9, at=days_ago(5)), "A", None),
        Counted(response("z2", "z@X.com", 3, at=days_ago(5)), "B", None),  # same person
        Counted(response("n1", None, 9), "A", None),
        Counted(response("n2", None, 9), "A", None),
    ]
    latest = latest_per_respondent(items, AS_OF, 365)
    ids = sorted(c.response.response_id for c in latest.values())
    assert ids == ["n1", "n2", "new", "z2"]
    assert latest["z@x.com"].account_id == "B"

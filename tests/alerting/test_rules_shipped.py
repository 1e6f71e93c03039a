"""The shipped rules fire on the situations they are named after, and only on those."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from factories import AS_OF, account_metrics, entity, response_facts
from factories import inputs as make_inputs

from agent.config.settings import SlackSettings
from agent.rules.evaluate import evaluate
from agent.rules.loader import RuleSet, load_rules

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    slack = SlackSettings()
    return load_rules(REPO / "rules", channels=set(slack.channels), routes=slack.routes)


def _fired(rules: RuleSet, **kwargs) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[str]] = {}
    for match in evaluate(rules.rules, make_inputs(**kwargs)).matches:
        out.setdefault(match.rule.id, []).append(match.subject)
    return out


def test_the_named_rules_ship(shipped: RuleSet) -> None:
    assert sorted(r.id for r in shipped.rules) == [
        "account-at-risk",
        "detractor-not-closed-48h",
        "executive-detractor",
        "executive-score-dropped",
        "health-dropped-30d",
        "new-detractor",
        "promoter-activation",
        "revenue-coverage-fell",
        "revenue-coverage-low",
        "tier-misalignment",
        "top-account-detractor",
        "top-account-no-feedback",
        "turned-at-risk",
        "upsell-candidate",
        "weekly-digest",
    ]


def test_response_rules(shipped: RuleSet) -> None:
    big = [account_metrics("BIG", revenue=9e6)]
    small = [account_metrics(f"S{i}", revenue=1000.0 + i) for i in range(60)]
    old = AS_OF - timedelta(hours=50)
    facts = [
        response_facts("EXEC", account=entity("BIG")),
        response_facts("TOP", account=entity("BIG"), tier="frontline"),
        response_facts("SMALL", account=entity("S0"), tier="frontline"),
        response_facts("LATE", account=entity("S1"), tier="management", submitted_at=old),
        response_facts(
            "DONE", account=entity("S2"), tier="frontline", submitted_at=old, loop_closed_at=AS_OF
        ),
        response_facts("HAPPY", account=entity("BIG"), score=10),
    ]
    fired = _fired(shipped, accounts=big + small, responses=facts)
    assert fired["executive-detractor"] == ["responses.csv/EXEC"]
    assert fired["top-account-detractor"] == ["responses.csv/TOP"]
    assert fired["detractor-not-closed-48h"] == ["responses.csv/LATE"]


def test_account_and_portfolio_rules(shipped: RuleSet) -> None:
    accounts = [
        account_metrics(
            "RISK", revenue=5e6, at_risk=True, health_status="at_risk", health_score=20.0
        ),
        account_metrics("SPLIT", revenue=4e6, tier_misaligned=True),
        account_metrics("UP", revenue=3e6, upsell_candidate=True, nps=80.0),
        account_metrics("QUIET", revenue=2e6, respondents=0, health_status="no_feedback", nps=None),
    ]
    fired = _fired(shipped, accounts=accounts, revenue_coverage=0.4)
    assert fired["account-at-risk"] == ["RISK"]
    assert fired["tier-misalignment"] == ["SPLIT"]
    assert fired["upsell-candidate"] == ["UP"]
    assert fired["top-account-no-feedback"] == ["QUIET"]
    assert fired["revenue-coverage-low"] == ["portfolio"]
    matches = evaluate(shipped.rules, make_inputs(accounts=accounts, revenue_coverage=0.4)).matches
    text = {m.rule.id: m.text for m in matches}
    assert text["revenue-coverage-low"].startswith("Only 40 % of revenue has feedback")
    assert "Account RISK (5,000,000) is at risk: health at_risk (20;" in text["account-at-risk"]
    assert "revenue-coverage-low" not in _fired(shipped, revenue_coverage=0.9)


def test_the_weekly_digest_fires_every_cycle_and_attaches_the_driver_chart(
    shipped: RuleSet,
) -> None:
    digest = shipped.by_id()["weekly-digest"].rule
    assert (digest.scope, digest.attach, digest.realert) == (
        "portfolio",
        "driver_chart",
        timedelta(days=7),
    )
    assert digest.notify.channel == "cx-leadership"
    for coverage in (0.1, 0.9):  # true whatever the figures: realert alone paces it
        assert _fired(shipped, revenue_coverage=coverage)["weekly-digest"] == ["portfolio"]

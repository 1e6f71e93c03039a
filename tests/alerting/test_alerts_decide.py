"""The notify decision: firing, re-arming, realert, silences, inhibition, escalation timing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from factories import AS_OF, account_metrics, response_facts
from factories import inputs as make_inputs
from rulefiles import rules_from

from agent.alerts.decide import EscalationCheck, decide, decide_escalation, decide_subject
from agent.alerts.model import AlertState, Silence
from agent.rules.evaluate import evaluate
from agent.rules.loader import RuleSet

RULES = """\
rules:
  - id: detractor
    scope: response
    when: response.category == "detractor"
    escalate: {after: 48h, to: cx-leadership, unless: response.loop_closed_at != null}
  - id: at-risk
    scope: account
    when: account.at_risk
    realert: 7d
    inhibits: [misaligned]
  - id: misaligned
    scope: account
    when: account.tier_misaligned
  - id: coverage
    scope: portfolio
    when: portfolio.revenue_coverage < 0.6
"""
HOUR = timedelta(hours=1)


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    return rules_from(tmp_path, RULES)


def _decide(rules: RuleSet, states=None, silences=(), now=AS_OF, **kwargs):  # type: ignore[no-untyped-def]
    evaluation = evaluate(rules.rules, make_inputs(**kwargs))
    return decide(list(rules.rules), evaluation, states or {}, list(silences), now)


def _alerted(state: AlertState, at=AS_OF) -> AlertState:  # type: ignore[no-untyped-def]
    return replace(state, last_alert_at=at, last_alert_id="x")


def test_account_rule_fires_when_true_then_holds_then_rearms(rules: RuleSet) -> None:
    first = _decide(rules, accounts=[account_metrics(at_risk=True)])
    assert [(d.rule_id, d.action, d.reason) for d in first] == [
        ("at-risk", "notify", "became_true")
    ]
    state = _alerted(first[0].state)  # type: ignore[arg-type]
    states = {("at-risk", "A1"): state}
    again = _decide(rules, states, now=AS_OF + HOUR, accounts=[account_metrics(at_risk=True)])
    assert [(d.action, d.reason) for d in again] == [("none", "still_firing")]
    gone = _decide(rules, states, now=AS_OF + 2 * HOUR, accounts=[account_metrics(at_risk=False)])
    assert [(d.action, d.reason) for d in gone] == [("rearm", "condition_false")]
    assert gone[0].state is not None
    assert gone[0].state.firing is False
    back = _decide(
        rules,
        {("at-risk", "A1"): gone[0].state},
        now=AS_OF + 3 * HOUR,
        accounts=[account_metrics(at_risk=True)],
    )
    assert [(d.action, d.reason) for d in back] == [("notify", "became_true")]


def test_realert_repeats_while_true(rules: RuleSet) -> None:
    state = _alerted(AlertState("at-risk", "A1", True, AS_OF))
    states = {("at-risk", "A1"): state}
    at_risk = [account_metrics(at_risk=True)]
    early = _decide(rules, states, now=AS_OF + timedelta(days=7) - HOUR, accounts=at_risk)
    assert [(d.action, d.reason) for d in early] == [("none", "still_firing")]
    due = _decide(rules, states, now=AS_OF + timedelta(days=7), accounts=at_risk)
    assert [(d.action, d.reason) for d in due] == [("notify", "realert_due")]


def test_response_rule_fires_once_per_response_and_never_rearms(rules: RuleSet) -> None:
    first = _decide(rules, responses=[response_facts("R1")])
    assert [(d.rule_id, d.subject, d.action, d.reason) for d in first] == [
        ("detractor", "responses.csv/R1", "notify", "new_response")
    ]
    states = {("detractor", "responses.csv/R1"): _alerted(first[0].state)}  # type: ignore[arg-type]
    second = _decide(rules, states, responses=[response_facts("R1"), response_facts("R2")])
    assert [(d.subject, d.action, d.reason) for d in second] == [
        ("responses.csv/R1", "none", "already_alerted"),
        ("responses.csv/R2", "notify", "new_response"),
    ]
    later = _decide(rules, states, now=AS_OF + timedelta(days=30), responses=[])
    assert later == []  # no re-arming for responses


def test_portfolio_rule_fires_and_rearms(rules: RuleSet) -> None:
    first = _decide(rules, revenue_coverage=0.5)
    assert [(d.subject, d.action) for d in first] == [("portfolio", "notify")]
    states = {("coverage", "portfolio"): _alerted(first[0].state)}  # type: ignore[arg-type]
    assert [d.action for d in _decide(rules, states, revenue_coverage=0.7)] == ["rearm"]


def test_inhibition_holds_the_other_rule_for_the_same_account(rules: RuleSet) -> None:
    accounts = [
        account_metrics("A1", at_risk=True, tier_misaligned=True),
        account_metrics("A2", tier_misaligned=True),
    ]
    got = {(d.rule_id, d.subject): (d.action, d.reason) for d in _decide(rules, accounts=accounts)}
    assert got[("misaligned", "A1")] == ("hold", "inhibited_by:at-risk")
    assert got[("misaligned", "A2")] == ("notify", "became_true")
    assert got[("at-risk", "A1")] == ("notify", "became_true")


def test_silence_holds_and_its_end_releases(rules: RuleSet) -> None:
    silence = Silence(1, None, "A1", "renewal talks", "ops", AS_OF, AS_OF + timedelta(days=7))
    at_risk = [account_metrics(at_risk=True)]
    held = _decide(rules, silences=[silence], accounts=at_risk)
    assert [(d.action, d.reason) for d in held] == [("hold", "silenced:1")]
    states = {("at-risk", "A1"): held[0].state}
    still = _decide(rules, states, [silence], now=AS_OF + timedelta(days=1), accounts=at_risk)
    assert [(d.action, d.reason) for d in still] == [("hold", "silenced:1")]
    after = _decide(rules, states, [silence], now=AS_OF + timedelta(days=8), accounts=at_risk)
    assert [(d.action, d.reason) for d in after] == [("notify", "no_longer_held")]


def test_silence_by_rule_matches_only_that_rule() -> None:
    silence = Silence(2, "at-risk", None, "noisy", None, AS_OF, AS_OF + HOUR)
    assert silence.mutes("at-risk", "A9", AS_OF)
    assert not silence.mutes("misaligned", "A9", AS_OF)
    assert not silence.mutes("at-risk", "A9", AS_OF + HOUR)


def test_escalation_timing(rules: RuleSet) -> None:
    rule = rules.by_id()["detractor"]
    state = _alerted(AlertState("detractor", "responses.csv/R1", True, AS_OF))

    def check(now, **kw):  # type: ignore[no-untyped-def]
        fields = {"state": state, "closed_at": None, "unless": False, **kw}
        return decide_escalation(rule, EscalationCheck(**fields), now)

    assert check(AS_OF + 47 * HOUR).reason == "not_due"
    due = check(AS_OF + 48 * HOUR)
    assert (due.action, due.reason) == ("escalate", "escalation_due")
    assert due.state is not None
    assert due.state.escalated_at == AS_OF + 48 * HOUR
    assert check(AS_OF + 50 * HOUR, unless=True).reason == "unless_holds"
    closed = check(AS_OF + 50 * HOUR, closed_at=AS_OF + 3 * HOUR)
    assert (closed.action, closed.reason) == ("close", "loop_closed")
    once = decide_escalation(
        rule,
        EscalationCheck(replace(state, escalated_at=AS_OF + 48 * HOUR), None, False),
        AS_OF + 60 * HOUR,
    )
    assert once.action == "none"
    by_button = decide_escalation(
        rule,
        EscalationCheck(replace(state, closed_at=AS_OF + HOUR), None, False),
        AS_OF + 60 * HOUR,
    )
    assert by_button.reason == "loop_closed"


def test_decide_subject_without_match_or_state_does_nothing(rules: RuleSet) -> None:
    decision = decide_subject(rules.by_id()["at-risk"], None, None, AS_OF)
    assert decision.action == "none"

"""Evaluation over each scope; pure, with rendered messages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from factories import AS_OF, account_metrics, entity, response_facts
from factories import inputs as make_inputs
from rulefiles import rules_from

from agent.rules.evaluate import evaluate

RULES = """\
rules:
  - id: exec-detractor
    scope: response
    when: response.category == "detractor" and contact.tier == "executive"
    message: "{contact.name} at {account.name} scored {response.score}: {response.comment}"
    max_age: 7d
  - id: at-risk
    scope: account
    when: account.at_risk
    message: "{account.name} ({account.revenue | money}) is at risk, NPS {account.nps}"
  - id: top-no-feedback
    scope: account
    when: account.revenue_rank <= 2 and account.respondents == 0
  - id: coverage
    scope: portfolio
    when: portfolio.revenue_coverage < 0.6
    message: "Revenue coverage {portfolio.revenue_coverage | pct}"
"""


def test_response_rules_see_only_counted_recent_matches(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, RULES)
    facts = [
        response_facts("R1"),
        response_facts("R2", tier="frontline"),
        response_facts("R3", score=10),
        response_facts("R4", counted=False),
        response_facts("R5", submitted_at=AS_OF - timedelta(days=8)),
    ]
    result = evaluate(rules.rules, make_inputs(responses=facts))
    hits = result.by_rule("exec-detractor")
    assert [m.subject for m in hits] == ["responses.csv/R1"]
    assert hits[0].text == "Dana Exec at Account A1 scored 3: Support never answers."
    assert hits[0].started_at == AS_OF
    assert hits[0].account_id == "A1"
    assert result.checked["exec-detractor"] == 3  # the counted ones within max_age


def test_account_and_portfolio_scopes(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, RULES)
    accounts = [
        account_metrics("A1", revenue=500_000.0, at_risk=True, nps=-20.0),
        account_metrics("A2", revenue=300_000.0, respondents=0),
        account_metrics("A3", revenue=100_000.0, respondents=0),
    ]
    result = evaluate(rules.rules, make_inputs(accounts, revenue_coverage=0.55))
    assert [m.subject for m in result.by_rule("at-risk")] == ["A1"]
    assert result.by_rule("at-risk")[0].text == "Account A1 (500,000) is at risk, NPS -20"
    assert [m.subject for m in result.by_rule("top-no-feedback")] == ["A2"]
    assert [m.text for m in result.by_rule("coverage")] == ["Revenue coverage 55 %"]


def test_null_figures_do_not_fire(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, RULES)
    result = evaluate(rules.rules, make_inputs(revenue_coverage=None))
    assert result.by_rule("coverage") == []
    assert not result.errors


def test_disabled_rules_are_not_evaluated(tmp_path: Path) -> None:
    rules = rules_from(
        tmp_path, "rules:\n  - id: a\n    scope: account\n    when: true\n    enabled: false\n"
    )
    assert evaluate(rules.rules, make_inputs()).matches == []


def test_ranking_uses_the_documents_order(tmp_path: Path) -> None:
    data = make_inputs(
        [
            account_metrics("B", revenue=100.0),
            account_metrics("A", revenue=100.0),
            account_metrics("C", revenue=800.0),
        ],
        entities=[entity("A", owner_email="a@x.example"), entity("B"), entity("C")],
    )
    assert [(k, f.revenue_rank) for k, f in data.accounts.items()] == [("C", 1), ("A", 2), ("B", 3)]
    assert data.accounts["A"].cumulative_revenue_share == 0.9
    assert data.accounts["A"].entity.owner_email == "a@x.example"


def test_answers_in_any_order_give_the_matches_answers_in_the_stores_order_give(
    tmp_path: Path,
) -> None:
    """Answers in the store's order (oldest first) are read from the first inside a
    rule's ``max_age`` on; answers in another order are all read. Both find the same."""
    rules = rules_from(tmp_path, RULES)
    days = [30, 20, 9, 8, 7, 6, 3, 1, 0, 0]
    ordered = [
        response_facts(f"R{i}", submitted_at=AS_OF - timedelta(days=d, hours=i))
        for i, d in enumerate(days)
    ]
    ordered.sort(key=lambda f: f.response.submitted_at)
    mixed = [*ordered[5:], *reversed(ordered[:5])]
    found = {}
    for name, facts in (("ordered", ordered), ("mixed", mixed)):
        result = evaluate(rules.rules, make_inputs(responses=facts))
        found[name] = (
            sorted(m.subject for m in result.by_rule("exec-detractor")),
            result.checked["exec-detractor"],
        )
    subjects, checked = found["ordered"]
    assert found["mixed"] == found["ordered"]
    assert checked == 5  # inside 7 days: R5 (6 days 5 h) to R9; R4 (7 days 4 h) is out
    assert len(subjects) == checked

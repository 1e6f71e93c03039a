"""One rounding rule: a health score of 72.5 is 73 in the field, table, Slack and report."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.alerts.model import AccountCard, AlertContent
from agent.core.contract import FieldsConfig
from agent.core.rounding import format_number, round_half_away
from agent.report.present import fmt
from agent.rules.template import format_value
from agent.sync.writeback import normalise
from connectors.slack.blocks import build_message


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (72.5, 0, "73"),
        (73.5, 0, "74"),
        (-72.5, 0, "-73"),
        (0.125, 2, "0.13"),
        (1234567.5, 0, "1,234,568"),
        (-0.4, 0, "0"),
        (35.75, 1, "35.8"),
    ],
)
def test_half_away_from_zero(value: float, decimals: int, expected: str) -> None:
    assert format_number(value, decimals) == expected


def test_the_field_the_table_slack_and_the_report_agree_on_72_5() -> None:
    spec = next(s for s in FieldsConfig().specs() if s.logical == "health_score")
    assert normalise(spec, 72.5) == 73  # the CRM field
    assert round_half_away(72.5) == Decimal(73)
    assert fmt(72.5, decimals=0) == "73"  # table and report
    assert format_value(72.5, "int") == "73"  # Slack text
    card = AccountCard(
        id="A1", name="Acme", revenue=1.0, health_status="healthy", health_score=72.5
    )
    content = AlertContent(alert_id="x", rule_id="r", title="t", text="t", account=card)
    shown = str([block.to_dict() for block in build_message(content)])
    assert "healthy (73)" in shown
    assert "healthy (72)" not in shown


def test_percent_and_money_use_the_same_rule() -> None:
    assert fmt(0.725, percent=True, decimals=0) == "73 %"
    assert format_value(0.725, "pct") == "73 %"
    assert format_value(2.5, "money") == "3"

"""Wiring from settings; the CRM close field; the docs name every expression field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from factories import AS_OF, account_metrics, entity
from factories import inputs as make_inputs
from factories import response_facts as one_match
from sqlalchemy import Engine

from agent.alerts.console import ConsoleNotifier
from agent.alerts.setup import build_pipeline, crm_link
from agent.config.settings import Settings
from agent.core.models import Contact
from agent.rules.facts import crm_closed_at, response_facts
from agent.rules.fields import VARIABLES

REPO = Path(__file__).resolve().parents[2]


def test_build_pipeline_from_settings(engine: Engine) -> None:
    settings = Settings(
        rules_dir=REPO / "rules",
        slack={"crm_url_template": "https://crm.example/{id}/view", "digest_threshold": 5},  # type: ignore[arg-type]
    )
    lines: list[str] = []
    pipeline = build_pipeline(settings, engine, ConsoleNotifier(lines.append))
    data = make_inputs(
        [account_metrics("A1", at_risk=True, health_status="at_risk")],
        entities=[entity("A1", owner_email="o@acme.example")],
    )
    report = pipeline.run(data, AS_OF)
    assert report.rules == 13
    assert report.delivery is not None
    assert report.delivery.sent == 2  # the at-risk alert and the weekly digest
    assert report.delivery.attached == 1  # the digest's driver chart
    text = "\n".join(lines)
    assert "-> #cx-alerts" in text
    assert "Account Experience weekly digest  -> #cx-leadership" in text
    assert "driver chart (by answers and by revenue, 0 drivers) would be attached" in text
    assert "crm: https://crm.example/A1/view" in text
    assert "owner: o@acme.example" in text  # mention_owner on the shipped at-risk rule


def test_crm_link() -> None:
    link = crm_link("https://x.example/{id}")
    assert link is not None
    assert link("001A") == "https://x.example/001A"
    assert crm_link(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-01T10:00:00Z", datetime(2026, 6, 1, 10, tzinfo=UTC)),
        ("2026-06-01T10:00:00", datetime(2026, 6, 1, 10, tzinfo=UTC)),
        ("not a time", None),
        ("", None),
        (None, None),
    ],
)
def test_crm_closed_at(value: object, expected: datetime | None) -> None:
    contact = Contact("c", "a", crm_values={"Closed__c": value} if value is not None else {})
    assert crm_closed_at(contact, "Closed__c") == expected
    assert crm_closed_at(contact, None) is None
    assert crm_closed_at(None, "Closed__c") is None


def test_docs_name_every_field_and_command() -> None:
    docs = (REPO / "docs/rules.md").read_text()
    for variable, fields in VARIABLES.items():
        for name in fields:
            assert f"`{variable}.{name}`" in docs
    for command in (
        "rules validate",
        "rules test",
        "alerts silence",
        "alerts unsilence",
        "alerts list",
    ):
        assert f"ax-agent {command}" in docs


def test_response_facts_are_the_matches_unless_the_crm_closed_the_loop() -> None:
    """A cycle holds a million matches: their facts are the same objects, not copies;
    only an answer whose contact carries the CRM's close time gets one carrying it."""
    open_, closed = one_match("R1"), one_match("R2")
    assert closed.contact is not None
    crm = closed._replace(contact=Contact("c2", "A1", crm_values={"Closed__c": "2026-06-01"}))
    matches = [open_, crm]
    assert response_facts(matches) is matches
    assert response_facts(matches, "") is matches
    facts = response_facts(matches, "Closed__c")
    assert facts[0] is open_
    assert facts[1] == crm._replace(loop_closed_at=datetime(2026, 6, 1, tzinfo=UTC))
    assert facts[1].closed_at == datetime(2026, 6, 1, tzinfo=UTC)
    assert open_.closed_at is None

"""Builders for Slack tests: a notifier pointed at the loopback fake, outbox alerts."""

from __future__ import annotations

from datetime import datetime

from fake_slack import TOKEN
from pydantic import SecretStr

from agent.alerts.model import AccountCard, AlertContent, Destination, ResponseCard
from agent.alerts.repo import OutboxRecord
from agent.settings import SlackSettings
from connectors.slack.notifier import SlackNotifier, make_client


def notifier(base_url: str, retries: int = 1) -> SlackNotifier:
    settings = SlackSettings(
        bot_token=SecretStr(TOKEN), base_url=base_url, max_retries=retries, timeout_seconds=5
    )
    return SlackNotifier(make_client(settings))


def content(
    alert_id: str, comment: str = "Support never answers.", **changes: object
) -> AlertContent:
    base = AlertContent(
        alert_id=alert_id,
        rule_id="detractor",
        title="Detractor",
        text="Dana Exec at Acme scored 3",
        severity="critical",
        reason="detractor: response.category == 'detractor' (new response)",
        account=AccountCard(
            id="A1",
            name="Acme",
            revenue=1_250_000.0,
            health_status="at_risk",
            health_score=31.5,
            nps=-20.0,
            crm_url="https://crm.example/A1",
        ),
        response=ResponseCard(
            response_id="R1",
            score=3,
            category="detractor",
            tier="executive",
            contact_name="Dana Exec",
            comment=comment,
            submitted_at=datetime(2026, 6, 1, 12, 0).astimezone(),
        ),
        closable=True,
    )
    return base.model_copy(update=changes)


def record(alert_id: str, channel: str, now: datetime, owner: str | None = None) -> OutboxRecord:
    return OutboxRecord(
        content=content(alert_id),
        scope="response",
        subject=alert_id,
        destination=Destination(channel=channel, owner_email=owner),
        created_at=now,
    )

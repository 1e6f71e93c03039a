"""Builders for Slack tests: a notifier pointed at the loopback fake, outbox alerts."""

from __future__ import annotations

from datetime import datetime

from fake_slack import TOKEN
from pydantic import SecretStr

from agent.alerts.compose import chart_attachment
from agent.alerts.model import AccountCard, AlertContent, Destination, ResponseCard
from agent.alerts.repo import OutboxRecord
from agent.config.settings import SlackSettings
from agent.report.digest import driver_chart
from connectors.slack.notifier import SlackNotifier, make_client
from tests.report_support import load_fixture


def notifier(base_url: str, retries: int = 1) -> SlackNotifier:
    settings = SlackSettings(
        bot_token=SecretStr(TOKEN), base_url=base_url, max_retries=retries, timeout_seconds=5
    )
    return SlackNotifier(make_client(settings), draw_chart=driver_chart)


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


def digest_record(alert_id: str, channel: str, now: datetime) -> OutboxRecord:
    """A weekly digest alert (``attach: driver_chart``) over the three-accounts fixture."""
    doc = load_fixture("three-accounts").doc
    content = AlertContent(
        alert_id=alert_id,
        rule_id="weekly-digest",
        title="Account Experience weekly digest",
        text="NPS 35.7 rests on 67 % of accounts and 70 % of revenue",
        severity="info",
        reason="weekly-digest: true (condition became true)",
        attachment=chart_attachment("driver_chart", doc),
    )
    return OutboxRecord(
        content=content,
        scope="portfolio",
        subject="portfolio",
        destination=Destination(channel=channel),
        created_at=now,
    )

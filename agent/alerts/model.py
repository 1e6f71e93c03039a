"""Alert values shared by the decision, the outbox and the notifiers.

``AlertContent`` is what a message says, independent of Slack: the Slack notifier
turns it into Block Kit, the console notifier into lines of text. It is stored as
JSON in the outbox, so a restarted agent sends exactly what was decided; that
includes a chart's figures (``ChartAttachment``), from which the image is drawn
when it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agent.core.document import DriverMetrics
from agent.rules.model import Attachment

__all__ = [
    "AccountCard",
    "AlertContent",
    "AlertKind",
    "AlertState",
    "ChartAttachment",
    "Closure",
    "Destination",
    "DigestItem",
    "HeadlineFigure",
    "OutboxAlert",
    "ResponseCard",
    "Sent",
    "Silence",
]

AlertKind = Literal["alert", "escalation", "digest", "update", "admin"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccountCard(_Frozen):
    id: str
    name: str
    revenue: float
    health_status: str
    health_score: float | None = None
    nps: float | None = None
    tiers_covered: tuple[str, ...] = ()
    owner_email: str | None = None
    crm_url: str | None = None


class ResponseCard(_Frozen):
    response_id: str
    score: int
    category: str
    tier: str
    contact_name: str | None = None
    contact_email: str | None = None
    comment: str | None = None
    driver: str | None = None
    submitted_at: datetime


class Closure(_Frozen):
    """Who closed a detractor's loop, when, and whether within the SLA."""

    closed_at: datetime
    closed_by: str
    within_sla: bool


class DigestItem(_Frozen):
    title: str
    text: str
    severity: str


class HeadlineFigure(_Frozen):
    """One of the report's headline figures: the document's value and its display text."""

    key: str
    label: str
    value: float | None
    text: str
    note: str


class ChartAttachment(_Frozen):
    """What a rule with ``attach: driver_chart`` sends besides its message.

    The headline figures go into the message; the chart is drawn from ``drivers``
    (the document's own driver figures) when it is sent, so a retry draws the same.
    """

    kind: Attachment = "driver_chart"
    as_of: datetime
    headlines: tuple[HeadlineFigure, ...]
    drivers: tuple[DriverMetrics, ...]


class AlertContent(_Frozen):
    kind: AlertKind = "alert"
    alert_id: str
    rule_id: str
    title: str
    text: str
    severity: str = "warning"
    reason: str = ""
    account: AccountCard | None = None
    response: ResponseCard | None = None
    #: Email of the person to @-mention (resolved to a Slack user when sending).
    mention_email: str | None = None
    #: Show a "close loop" button (detractor alerts).
    closable: bool = False
    closure: Closure | None = None
    #: For an escalation or an update: the alert it refers to.
    refers_to: str | None = None
    items: tuple[DigestItem, ...] = ()
    more: int = 0
    #: The headline figures and the driver chart (``attach: driver_chart``).
    attachment: ChartAttachment | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where to send: a channel (id or #name), or first the owner's DMs when set."""

    channel: str
    owner_email: str | None = None

    @property
    def key(self) -> str:
        """Alerts with the same key are grouped into one digest."""
        return f"owner:{self.owner_email}" if self.owner_email else self.channel


@dataclass(frozen=True, slots=True)
class Sent:
    """Slack's answer: the message's channel id and ts.

    ``printed``: the alert was only printed (no Slack token), not sent; it is stored as
    ``printed`` so nobody reads it as delivered, and a later token sends it only when
    asked (``ax-agent alerts resend --since``).
    """

    channel: str
    ts: str
    printed: bool = False


@dataclass(frozen=True, slots=True)
class OutboxAlert:
    alert_id: str
    rule_id: str
    kind: AlertKind
    destination: Destination
    content: AlertContent
    attempts: int
    created_at: datetime
    #: The channel the message is (being) posted to, known before sending.
    channel_id: str | None = None
    #: For ``update``: the message to update.
    target: Sent | None = None
    #: An alert with an attachment whose message is posted but whose attachment
    #: is not confirmed yet: the message, so a retry only adds the attachment.
    posted: Sent | None = None


@dataclass(frozen=True, slots=True)
class AlertState:
    """A rule's state for one subject (``alert_state``)."""

    rule_id: str
    subject: str
    firing: bool
    since: datetime
    last_alert_at: datetime | None = None
    last_alert_id: str | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    rule_id: str | None
    account_id: str | None
    reason: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime

    def mutes(self, rule_id: str, account_id: str | None, now: datetime) -> bool:
        """Active, and every matcher it has (rule, account) matches."""
        if self.expires_at <= now:
            return False
        if self.rule_id is not None and self.rule_id != rule_id:
            return False
        return self.account_id is None or self.account_id == account_id

"""What a message says and where it goes, independent of any messaging vendor.

``AlertContent`` is what a message says: the Slack notifier turns it into Block Kit,
the console notifier into lines of text. It is stored as JSON in the outbox, so a
restarted agent sends exactly what was decided; that includes a chart's figures
(``ChartAttachment``), from which the image is drawn when it is sent (``Chart``,
through a ``DrawChart`` the agent hands the notifier). ``OutboxAlert`` is one entry
of the outbox as a notifier receives it; ``Sent`` is the vendor's confirmation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agent.core.document import DriverMetrics

__all__ = [
    "AccountCard",
    "AlertContent",
    "AlertKind",
    "Attachment",
    "Chart",
    "ChartAttachment",
    "Closure",
    "Destination",
    "Digest",
    "DigestItem",
    "DrawChart",
    "HeadlineFigure",
    "OutboxAlert",
    "ResponseCard",
    "Sent",
]

#: What a portfolio rule can send with its message: ``driver_chart`` is the weekly
#: digest's attachment (the headline figures in the message, the driver chart in its thread).
Attachment = Literal["driver_chart"]
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
class Chart:
    """A picture to post: PNG bytes, and the words for whoever cannot see it."""

    png: bytes
    alt_text: str


@dataclass(frozen=True, slots=True)
class Digest:
    """The weekly digest as posted: its title, its text (chat markup) and its chart."""

    title: str
    text: str
    chart: Chart


#: Draws the driver chart from the document's driver figures (``agent.report`` does).
DrawChart = Callable[[Sequence[DriverMetrics]], Chart]

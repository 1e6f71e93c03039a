"""Alert values shared by the decision, the outbox and the notifiers.

What a message says and where it goes (``AlertContent``, ``OutboxAlert``, ``Sent``
…) lives in ``agent.core.messages``, where the notifiers read it; it is re-exported
here for the alert stages. This module adds the alerting state: a rule's state for
one subject and the silences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent.core.messages import (
    AccountCard,
    AlertContent,
    AlertKind,
    ChartAttachment,
    Closure,
    Destination,
    DigestItem,
    HeadlineFigure,
    OutboxAlert,
    ResponseCard,
    Sent,
)

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

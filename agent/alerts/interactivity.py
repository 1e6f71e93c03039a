"""Closing a detractor's loop from a button in a message (Slack's "Close loop").

The messaging adapter checks the request and reads which alert and who; this is the
alert logic behind it: record the closure once, queue the update of the original
message (who closed it, when, within the SLA or not), and have it delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from agent.alerts.deliver import deliver
from agent.alerts.pipeline import close_loop
from agent.alerts.repo import AlertRepo
from agent.core.ports import Notifier

__all__ = ["LoopCloser"]

_log = structlog.get_logger(__name__)


class LoopCloser:
    """An ``agent.core.ports.CloseLoop``: ``closer(alert_id, closed_by)``, True when recorded."""

    def __init__(
        self,
        repo: AlertRepo,
        notifier: Notifier,
        *,
        loop_sla: timedelta = timedelta(hours=48),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        deliver_now: Callable[[], object] | None = None,
    ) -> None:
        """``deliver_now`` replaces the inline delivery of the message update: the agent
        passes its scheduler's trigger, so one thread alone ever delivers the outbox."""
        self.repo = repo
        self.notifier = notifier
        self.loop_sla = loop_sla
        self.clock = clock
        self.deliver_now = deliver_now

    def __call__(self, alert_id: str, closed_by: str) -> bool:
        """Close the loop of ``alert_id``; False when unknown or already closed."""
        now = self.clock()
        record = close_loop(self.repo, alert_id, closed_by, now, self.loop_sla)
        if record is None:
            return False
        if self.deliver_now is not None:
            self.deliver_now()
        else:
            deliver(self.repo, self.notifier, now)
        return True

"""The delivery stage: send pending outbox rows, record "sent" only after the vendor said so.

Before a row that may already have been sent (``attempts > 0``: the process died
between sending and marking) is sent again, the notifier looks for it by the
alert id it attached. A retriable failure (an outage, after the client's own
retries) stops the round and leaves everything pending for the next cycle; a
fatal one marks that row ``failed`` with the vendor's reason.

An alert with an attachment (the weekly digest's driver chart) goes out in two
recorded steps: the message (found by its alert id after a crash, like any
alert), then the attachment with it. The message is recorded before the
attachment is sent, so a retry only adds the attachment, after looking whether
an earlier try already did: each step at least once, neither visibly twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from prometheus_client import Counter

from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.repo import AlertRepo
from agent.core.ports import Notifier
from connectors.common.errors import FatalError, RetriableError

__all__ = ["ALERTS", "DeliveryReport", "Notifier", "deliver"]

_log = structlog.get_logger(__name__)

#: Delivery outcomes by rule: sent, recovered (found already sent), updated,
#: suppressed, deferred (vendor outage, retried next round), failed.
ALERTS = Counter("ax_alerts_total", "Alert deliveries by rule and outcome", ["rule", "outcome"])


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    recovered: int = 0
    #: Attachments sent (the message itself counts in ``sent`` or ``recovered``).
    attached: int = 0
    updated: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    #: Alerts still pending when delivery stopped at the stop deadline.
    remaining: int = 0
    error: str | None = None


#: Rows read from the outbox per round trip; delivery goes on page after page.
PAGE = 100


def deliver(
    repo: AlertRepo, notifier: Notifier, now: datetime, *, limit: int | None = None
) -> DeliveryReport:
    """Send what is pending, oldest first, until the outbox is drained.

    Rows recorded while delivery runs are taken too (delivery pages on by creation
    time), so a burst drains continuously at the pace the vendor's rate limits allow;
    ``limit`` caps the alerts handled in one call (None: no cap). A vendor outage
    (after the client's own retries) stops the round with every unsent alert still
    pending. While the agent stops, delivery ends at ``repo.drain_deadline`` and
    reports how many remain. A superseded leader's claim raises ``FencedError``.
    """
    with repo.sending:  # one sender at a time, whichever thread asks
        try:
            return _drain(repo, notifier, now, limit)
        finally:
            repo.flush()  # the last sends' records (deferred to ride on the next claim)


def _drain(repo: AlertRepo, notifier: Notifier, now: datetime, limit: int | None) -> DeliveryReport:
    report = DeliveryReport()
    after: tuple[datetime, str] | None = None
    handled = 0
    while limit is None or handled < limit:
        page = repo.pending(PAGE if limit is None else min(PAGE, limit - handled), after)
        if not page:
            break
        for alert in page:
            if repo.past_deadline():
                repo.flush()
                report.remaining = repo.pending_count()
                _log.warning("alert_delivery_stopped_at_deadline", remaining=report.remaining)
                return report
            after = (alert.created_at, alert.alert_id)
            handled += 1
            log = _log.bind(alert_id=alert.alert_id, rule=alert.rule_id, kind=alert.kind)
            try:
                _one(repo, notifier, alert, now, report)
            except RetriableError as exc:
                repo.mark_error(alert.alert_id, str(exc))
                ALERTS.labels(rule=alert.rule_id, outcome="deferred").inc()
                repo.flush()
                report.deferred = repo.pending_count()
                report.error = str(exc)
                log.warning("alert_delivery_deferred", error=str(exc), pending=report.deferred)
                return report
            except FatalError as exc:
                repo.mark_error(alert.alert_id, str(exc), failed=True)
                ALERTS.labels(rule=alert.rule_id, outcome="failed").inc()
                report.failed += 1
                log.error("alert_delivery_failed", error=str(exc))
    return report


def _one(
    repo: AlertRepo, notifier: Notifier, alert: OutboxAlert, now: datetime, report: DeliveryReport
) -> None:
    if alert.kind == "update":
        repo.flush()  # the original's state must be recorded before it is read
        _update(repo, notifier, alert, now, report)
        return
    if alert.content.attachment is not None:
        _with_attachment(repo, notifier, alert, now, report)
        return
    sent = _post(repo, notifier, alert, report)
    if sent is not None:
        repo.mark_sent(alert.alert_id, sent, now, later=True)


def _post(
    repo: AlertRepo, notifier: Notifier, alert: OutboxAlert, report: DeliveryReport
) -> Sent | None:
    """The alert's message: found where an earlier try may have put it, else sent now.

    An earlier try (``attempts > 0``: this agent before a crash, or a superseded
    leader whose claim was never confirmed) is never trusted: the message is looked
    for in Slack by its metadata first. None when the row could not be claimed (no
    longer pending): nothing is sent.
    """
    if alert.attempts > 0 and alert.channel_id:
        found = notifier.find_sent(alert, alert.channel_id)
        if found is not None:
            ALERTS.labels(rule=alert.rule_id, outcome="recovered").inc()
            report.recovered += 1
            _log.info("alert_found_already_sent", alert_id=alert.alert_id, ts=found.ts)
            return found
    channel_id = notifier.resolve(alert)
    if not repo.claim(alert.alert_id, channel_id):
        _log.info("alert_no_longer_pending", alert_id=alert.alert_id)
        return None
    sent = notifier.send(alert, channel_id)
    ALERTS.labels(rule=alert.rule_id, outcome="sent").inc()
    report.sent += 1
    return sent


def _with_attachment(
    repo: AlertRepo, notifier: Notifier, alert: OutboxAlert, now: datetime, report: DeliveryReport
) -> None:
    """Message, recorded; then the attachment, looked for first when a try was cut short.

    An attachment only starts after its message is recorded, so it needs looking
    for only when this row already had its message at the start of this round.
    """
    message = alert.posted
    if message is None:
        message = _post(repo, notifier, alert, report)
        if message is None:
            return
        repo.mark_posted(alert.alert_id, message)
    elif notifier.find_attachment(alert, message):
        repo.mark_sent(alert.alert_id, message, now)
        report.recovered += 1
        _log.info("alert_attachment_found_already_sent", alert_id=alert.alert_id, ts=message.ts)
        return
    if not repo.claim(alert.alert_id, message.channel):
        return
    notifier.attach(alert, message)
    repo.mark_sent(alert.alert_id, message, now)
    report.attached += 1


def _update(
    repo: AlertRepo, notifier: Notifier, alert: OutboxAlert, now: datetime, report: DeliveryReport
) -> None:
    original = alert.content.refers_to or ""
    status = repo.status(original)
    if status == "pending":
        return  # the original goes first; this waits for the next round
    target = repo.sent_message(original) if status == "sent" else None
    if target is None:
        repo.mark_status(alert.alert_id, "suppressed", f"original alert is {status or 'unknown'}")
        ALERTS.labels(rule=alert.rule_id, outcome="suppressed").inc()
        report.skipped += 1
        return
    if not repo.claim(alert.alert_id, target.channel):
        return
    sent = notifier.update(alert, target)
    repo.mark_sent(alert.alert_id, sent, now)
    ALERTS.labels(rule=alert.rule_id, outcome="updated").inc()
    report.updated += 1

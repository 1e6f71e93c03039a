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

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NoReturn, TypeAlias, TypeVar

import structlog
from prometheus_client import Counter

from agent.alerts.lanes import Outcome, send_lanes
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.repo import AlertRepo
from agent.core.ports import Notifier
from agent.state.errors import FencedError
from agent.state.own_writes import carry_watch
from connectors.common.errors import FatalError, RetriableError

__all__ = ["ALERTS", "DeliveryReport", "Notifier", "deliver"]

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")

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
    #: Another sender was draining the outbox (``wait=False``): nothing was done here.
    busy: bool = False


#: Rows read from the outbox per round trip; delivery goes on page after page.
PAGE = 100
#: Posts to one channel claimed together (one commit for the batch, before its sends):
#: a second's worth at a brisk pace. Posts to other channels join the same batch.
LANE = 20
#: Channels posted to side by side (each waits only for its own rate limit).
LANES = 8


def deliver(
    repo: AlertRepo,
    notifier: Notifier,
    now: datetime,
    *,
    limit: int | None = None,
    wait: bool = True,
) -> DeliveryReport:
    """Send what is pending, oldest first, until the outbox is drained.

    Rows recorded while delivery runs are taken too (delivery pages on by creation
    time), so a burst drains continuously at the pace the vendor's rate limits allow;
    ``limit`` caps the alerts handled in one call (None: no cap). A vendor outage
    (after the client's own retries) stops the round with every unsent alert still
    pending. While the agent stops, delivery ends at ``repo.drain_deadline`` and
    reports how many remain. A superseded leader's claim raises ``FencedError``.

    Plain posts (no attachment, not an update, never tried before) are claimed a batch
    at a time in one commit, then sent channel by channel, the channels side by side
    (``agent.alerts.lanes``); each is recorded sent with the moment it went out, on the
    next batch's commit; the next batch is claimed while the current one is sent. Each
    send is still fenced: right before it, the leadership
    epoch is confirmed (a read, no commit). Claims whose send never started (an outage,
    the deadline) are released; after a crash or a takeover, claimed rows are looked
    for in Slack before any resend.

    ``wait=False``: when another sender is draining already (it takes what is pending,
    rows recorded meanwhile included), return at once with ``busy`` set instead of
    waiting for it: a drain at the rate limits' pace can last as long as the backlog.
    """
    if not repo.sending.acquire(blocking=wait):
        return DeliveryReport(busy=True)
    try:  # one sender at a time, whichever thread asks
        try:
            # the lanes record for the caller: a whole cycle counts their writes as its own
            join = carry_watch(repo.engine)
            with ThreadPoolExecutor(
                LANES + 1, thread_name_prefix="delivery-lane", initializer=join
            ) as pool:
                return _Round(repo, notifier, _stamp(repo, now), pool).drain(limit)
        finally:
            repo.flush()  # the last sends' records (deferred to ride on the next claim)
    finally:
        repo.sending.release()


def _stamp(repo: AlertRepo, now: datetime) -> Callable[[], datetime]:
    """When a send happened: the running agent's clock, else the round's ``now``."""
    clock = repo.clock
    return (lambda: max(now, clock())) if clock is not None else (lambda: now)


def _about(alert: OutboxAlert) -> Any:  # structlog's bound logger (typed Any by get_logger)
    """The log bound to one alert."""
    return _log.bind(alert_id=alert.alert_id, rule=alert.rule_id, kind=alert.kind)


def _plain(alert: OutboxAlert) -> bool:
    """A post with nothing to look up first and nothing to add after it."""
    return alert.kind != "update" and alert.content.attachment is None and alert.attempts == 0


#: What a page is sent as, in order: a batch of plain posts with their channel ids,
#: an alert sent on its own, or an alert whose channel cannot be resolved (an outage).
_Group: TypeAlias = "list[tuple[OutboxAlert, str]] | OutboxAlert | _Unreachable"


@dataclass(frozen=True, slots=True)
class _Unreachable:
    alert: OutboxAlert
    error: RetriableError


@dataclass(frozen=True, slots=True)
class _Ahead:
    """The next batch, its claim committing while the current batch is sent."""

    batch: list[tuple[OutboxAlert, str]]
    claim: Future[set[str]]


class _Round:
    """One drain: pages of pending rows, plain posts batched, the others one by one.

    While a batch is sent, the next batch's claim commits in another thread, so the
    wait for the database's write lock (a burst of answers being stored) is spent
    while the current posts go out rather than between two batches.
    """

    def __init__(
        self,
        repo: AlertRepo,
        notifier: Notifier,
        stamp: Callable[[], datetime],
        pool: ThreadPoolExecutor,
    ) -> None:
        self.repo = repo
        self.notifier = notifier
        self.stamp = stamp
        self.pool = pool
        self.report = DeliveryReport()

    def drain(self, limit: int | None) -> DeliveryReport:
        groups = _Peek(self._groups(limit))
        ahead: _Ahead | None = None
        try:
            for group in groups:
                if self.repo.past_deadline():
                    self._at_deadline()
                if isinstance(group, _Unreachable):
                    self._deferred(group.alert, group.error)
                if isinstance(group, OutboxAlert):
                    self._single(group)
                    continue
                current, ahead = ahead, None
                claimed = self._claimed(group, current)
                ahead = self._claim_ahead(groups.peek())
                self._send(group, claimed)
        except _Stop:
            pass
        finally:
            self._give_back(ahead)
        return self.report

    def _groups(self, limit: int | None) -> Iterator[_Group]:
        after: tuple[datetime, str] | None = None
        handled = 0
        while limit is None or handled < limit:
            size = PAGE if limit is None else min(PAGE, limit - handled)
            page = self.repo.pending(size, after)
            if not page:
                return
            after = (page[-1].created_at, page[-1].alert_id)
            handled += len(page)
            yield from self._page(page)

    def _page(self, page: list[OutboxAlert]) -> Iterator[_Group]:
        """One page in order: plain posts batched (up to ``LANE`` a channel), the others
        one by one."""
        batch: list[tuple[OutboxAlert, str]] = []
        for alert in page:
            if not _plain(alert):
                if batch:
                    yield batch
                    batch = []
                yield alert
                continue
            try:
                channel = self.notifier.resolve(alert)
            except RetriableError as exc:
                if batch:
                    yield batch
                yield _Unreachable(alert, exc)
                return
            except FatalError as exc:
                self._failed(alert, exc)
                continue
            if sum(1 for _, c in batch if c == channel) >= LANE:
                yield batch
                batch = []
            batch.append((alert, channel))
        if batch:
            yield batch

    def _claimed(self, batch: list[tuple[OutboxAlert, str]], ahead: _Ahead | None) -> set[str]:
        if ahead is not None and ahead.batch is batch:
            return ahead.claim.result()
        self._give_back(ahead)
        return self.repo.claim_many([(a.alert_id, c) for a, c in batch])

    def _claim_ahead(self, group: _Group | None) -> _Ahead | None:
        if not isinstance(group, list):
            return None
        pairs = [(a.alert_id, c) for a, c in group]
        return _Ahead(group, self.pool.submit(self.repo.claim_many, pairs))

    def _give_back(self, ahead: _Ahead | None) -> None:
        """A batch claimed ahead and never sent (the round stopped): release its claims."""
        if ahead is None:
            return
        try:
            claimed = ahead.claim.result()
        except FencedError:
            return  # no longer leading: the next leader looks for them in Slack first
        self.repo.release(claimed)

    def _send(self, batch: list[tuple[OutboxAlert, str]], claimed: set[str]) -> None:
        """Send a claimed batch lane by lane, and record what happened."""
        repo = self.repo
        lanes: dict[str, list[OutboxAlert]] = {}
        for alert, channel in batch:
            if alert.alert_id in claimed:
                lanes.setdefault(channel, []).append(alert)
            else:
                _log.info("alert_no_longer_pending", alert_id=alert.alert_id)
        result = send_lanes(
            self.pool,
            self.notifier,
            lanes,
            stamp=self.stamp,
            halted=repo.past_deadline,
            confirm=repo.confirm,
        )
        outage: Outcome | None = None
        for outcome in result.outcomes:
            if outcome.sent is not None and outcome.sent_at is not None:
                repo.mark_sent(outcome.alert.alert_id, outcome.sent, outcome.sent_at, later=True)
                ALERTS.labels(rule=outcome.alert.rule_id, outcome="sent").inc()
                self.report.sent += 1
            elif isinstance(outcome.error, RetriableError):
                outage = outcome
            elif outcome.error is not None:
                self._failed(outcome.alert, outcome.error)
        repo.release(a.alert_id for a in result.unsent)
        if outage is not None and outage.error is not None:
            self._deferred(outage.alert, outage.error)
        if result.unsent:
            self._at_deadline()

    def _single(self, alert: OutboxAlert) -> None:
        """An update, a two-step post, or a retry: sent on its own, as before batches."""
        try:
            _one(self.repo, self.notifier, alert, self.stamp, self.report)
        except RetriableError as exc:
            self._deferred(alert, exc)
        except FatalError as exc:
            self._failed(alert, exc)

    def _deferred(self, alert: OutboxAlert, error: Exception) -> NoReturn:
        """An outage: the round stops, every unsent alert stays pending."""
        self.repo.mark_error(alert.alert_id, str(error))
        ALERTS.labels(rule=alert.rule_id, outcome="deferred").inc()
        self.repo.flush()
        self.report.deferred = self.repo.pending_count()
        self.report.error = str(error)
        _about(alert).warning(
            "alert_delivery_deferred", error=str(error), pending=self.report.deferred
        )
        raise _Stop

    def _failed(self, alert: OutboxAlert, error: Exception) -> None:
        self.repo.mark_error(alert.alert_id, str(error), failed=True)
        ALERTS.labels(rule=alert.rule_id, outcome="failed").inc()
        self.report.failed += 1
        _about(alert).error("alert_delivery_failed", error=str(error))

    def _at_deadline(self) -> NoReturn:
        self.repo.flush()
        self.report.remaining = self.repo.pending_count()
        _log.warning("alert_delivery_stopped_at_deadline", remaining=self.report.remaining)
        raise _Stop


class _Peek(Generic[_T]):
    """An iterator that can show its next item without giving it yet."""

    def __init__(self, items: Iterator[_T]) -> None:
        self._items = items
        self._next: list[_T] = []

    def __iter__(self) -> _Peek[_T]:
        return self

    def __next__(self) -> _T:
        return self._next.pop() if self._next else next(self._items)

    def peek(self) -> _T | None:
        if not self._next:
            try:
                self._next.append(next(self._items))
            except StopIteration:
                return None
        return self._next[0]


class _Stop(Exception):  # noqa: N818  # control flow within a round, never seen outside
    """The round ends here (an outage, the drain deadline)."""


def _one(
    repo: AlertRepo,
    notifier: Notifier,
    alert: OutboxAlert,
    stamp: Callable[[], datetime],
    report: DeliveryReport,
) -> None:
    if alert.kind == "update":
        repo.flush()  # the original's state must be recorded before it is read
        _update(repo, notifier, alert, stamp, report)
        return
    if alert.content.attachment is not None:
        _with_attachment(repo, notifier, alert, stamp, report)
        return
    sent = _post(repo, notifier, alert, report)
    if sent is not None:
        repo.mark_sent(alert.alert_id, sent, stamp(), later=True)


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
    repo: AlertRepo,
    notifier: Notifier,
    alert: OutboxAlert,
    stamp: Callable[[], datetime],
    report: DeliveryReport,
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
        repo.mark_sent(alert.alert_id, message, stamp())
        report.recovered += 1
        _log.info("alert_attachment_found_already_sent", alert_id=alert.alert_id, ts=message.ts)
        return
    if not repo.claim(alert.alert_id, message.channel):
        return
    notifier.attach(alert, message)
    repo.mark_sent(alert.alert_id, message, stamp())
    report.attached += 1


def _update(
    repo: AlertRepo,
    notifier: Notifier,
    alert: OutboxAlert,
    stamp: Callable[[], datetime],
    report: DeliveryReport,
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
    repo.mark_sent(alert.alert_id, sent, stamp())
    ALERTS.labels(rule=alert.rule_id, outcome="updated").inc()
    report.updated += 1

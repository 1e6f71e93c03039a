"""The delivery worker: sends recorded alerts at once in its own thread, one sender only,
every post claimed against the leadership epoch; it stops on stop and on leadership loss.

A real SQLite state, the real Slack notifier and the loopback Slack fake; a second
``Fence`` on the same database stands for a standby that took over.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from factories import AS_OF, account_metrics
from factories import inputs as make_inputs
from fake_slack import CHANNELS, FakeSlack
from rulefiles import write_rules
from slackkit import notifier, record
from sqlalchemy import Engine, select, update

from agent.alerts.deliver import deliver
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.pipeline import AlertPipeline
from agent.alerts.repo import AlertRepo
from agent.alerts.routing import Routing
from agent.core.timeutil import utcnow
from agent.rules.registry import RuleRegistry
from agent.service import jobs
from agent.service.delivery import DeliveryWorker
from agent.service.runtime import Runtime
from agent.state.leader_epoch import Fence
from agent.state.schema import alert_outbox, leadership
from connectors.slack.notifier import SlackNotifier

CX = CHANNELS["cx-alerts"]
RULES = """\
rules:
  - id: at-risk
    description: Account at risk
    scope: account
    when: account.at_risk
    notify: {channel: cx-alerts}
"""
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fence(engine: Engine) -> Fence:
    leader = Fence(engine, pid=1)
    assert leader.take(holds_lock=False)
    return leader


class Tracked:
    """The real notifier, counting sends in flight at once (and a hook after each)."""

    def __init__(self, real: SlackNotifier, pause: float = 0.0) -> None:
        self.real = real
        self.pause = pause
        self.in_flight = 0
        self.most = 0
        self.after_send: Any = None
        self._lock = threading.Lock()

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(self.pause)
            sent = self.real.send(alert, channel_id)
        finally:
            with self._lock:
                self.in_flight -= 1
        if self.after_send is not None:
            self.after_send(alert)
        return sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _worker(
    repo: AlertRepo, sender: object, fence: Fence, idle_seconds: float = 0.05
) -> DeliveryWorker:
    runtime = SimpleNamespace(pipeline=SimpleNamespace(repo=repo), notifier=sender)
    worker = DeliveryWorker(
        cast(Runtime, runtime), lambda: fence.leading, idle_seconds=idle_seconds
    )
    worker.start()
    return worker


def _wait(condition: Any, what: str, timeout: float = 30) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.02)


def _statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(alert_outbox.c.alert_id, alert_outbox.c.status))
        return {r.alert_id: r.status for r in rows}


def test_recorded_alerts_are_sent_at_once_by_the_worker_not_the_job(
    engine: Engine, fence: Fence, slack: FakeSlack, tmp_path: Path
) -> None:
    repo = AlertRepo(engine, fence)
    # Idle for a minute: only the wake from the recording job can make it send in time.
    worker = _worker(repo, notifier(slack.base_url), fence, idle_seconds=60)
    folder = write_rules(tmp_path / "rules", RULES)
    pipeline = AlertPipeline(
        repo,
        RuleRegistry(folder, channels={"cx-alerts"}, routes={}),
        Routing(channels={"cx-alerts": CX}, default_channel="cx-alerts"),
        notifier(slack.base_url),
        admin_channel="cx-alerts",
    )
    pipeline.handoff = worker.wake
    accounts = [account_metrics(f"A{i}", at_risk=True) for i in range(1, 6)]
    try:
        report = pipeline.run(make_inputs(accounts), AS_OF)
        assert report.recorded == 5
        assert report.delivery is None  # not delivered in the job's own thread
        _wait(lambda: len(slack.posted()) == 5, "the worker's posts", timeout=20)
        _wait(lambda: set(_statuses(engine).values()) == {"sent"}, "recorded sent")
        _wait(lambda: worker.rounds >= 1, "the round counted")  # counted once it returns
    finally:
        worker.stop()
        assert worker.join(5)


def test_rows_are_stamped_with_the_moment_they_are_written(engine: Engine) -> None:
    repo = AlertRepo(engine)
    evaluated_at = utcnow() - timedelta(seconds=30)  # evaluation began 30 s ago
    repo.clock = utcnow
    before = utcnow()
    repo.record([record("a1", CX, evaluated_at)], [])
    (alert,) = repo.pending()
    assert alert.created_at >= before
    repo.clock = None  # outside the running agent: the cycle's time, as given
    repo.record([record("a2", CX, evaluated_at)], [])
    stamped = {a.alert_id: a.created_at for a in repo.pending()}
    assert stamped["a2"] == evaluated_at


def test_never_two_senders_and_each_alert_posted_once(
    engine: Engine, fence: Fence, slack: FakeSlack
) -> None:
    repo = AlertRepo(engine, fence)
    sender = Tracked(notifier(slack.base_url), pause=0.02)
    repo.record([record(f"a{i:02}", CX, NOW + timedelta(seconds=i)) for i in range(30)], [])
    worker = _worker(repo, sender, fence)
    try:
        worker.wake()
        # The outbox job and the flush at stop deliver from other threads at the same time.
        others = [threading.Thread(target=deliver, args=(repo, sender, NOW)) for _ in range(3)]
        for thread in others:
            thread.start()
        for thread in others:
            thread.join(60)
        _wait(lambda: set(_statuses(engine).values()) == {"sent"}, "all sent")
    finally:
        worker.stop()
        assert worker.join(5)
    assert sender.most == 1
    ids = [p["metadata"]["event_payload"]["alert_id"] for p in slack.posted()]
    assert sorted(ids) == [f"a{i:02}" for i in range(30)]


def test_a_stopped_worker_sends_nothing_more(
    engine: Engine, fence: Fence, slack: FakeSlack
) -> None:
    repo = AlertRepo(engine, fence)
    worker = _worker(repo, notifier(slack.base_url), fence)
    worker.stop()
    assert worker.join(5)
    repo.record([record("a1", CX, NOW)], [])
    worker.wake()
    time.sleep(0.3)
    assert slack.posted() == []
    assert _statuses(engine) == {"a1": "pending"}  # the next leader (or restart) sends it


def test_a_superseded_leader_stops_sending_at_its_next_claim(
    engine: Engine, fence: Fence, slack: FakeSlack
) -> None:
    repo = AlertRepo(engine, fence)
    sender = Tracked(notifier(slack.base_url))
    successor = Fence(engine, pid=2)

    def take_over(alert: OutboxAlert) -> None:
        if alert.alert_id == "a00":  # a standby takes over after the first post
            with engine.begin() as conn:
                conn.execute(
                    update(leadership).values(lease_expires_at=datetime(2000, 1, 1, tzinfo=UTC))
                )
            assert successor.take(holds_lock=False)

    sender.after_send = take_over
    repo.record([record(f"a{i:02}", CX, NOW + timedelta(seconds=i)) for i in range(5)], [])
    worker = _worker(repo, sender, fence)
    try:
        worker.wake()
        _wait(lambda: not fence.leading, "the old leader stepping down")
        _wait(lambda: worker.rounds == 0 and not repo.sending.locked(), "the round's end")
        worker.wake()  # woken again while no longer leading: nothing is sent
        time.sleep(0.3)
        assert worker.alive  # it waits to lead again; it does not die
    finally:
        worker.stop()
        assert worker.join(5)
    assert [p["metadata"]["event_payload"]["alert_id"] for p in slack.posted()] == ["a00"]
    # Its record of a00 was refused too: a00 stays pending, tried once ("maybe sent"),
    # and the new leader finds it in Slack instead of posting it again.
    assert set(_statuses(engine).values()) == {"pending"}
    report = deliver(AlertRepo(engine, successor), notifier(slack.base_url), NOW)
    assert (report.recovered, report.sent) == (1, 4)
    ids = [p["metadata"]["event_payload"]["alert_id"] for p in slack.posted()]
    assert sorted(ids) == [f"a{i:02}" for i in range(5)]


def test_a_worker_sends_what_is_pending_as_soon_as_its_agent_leads(
    engine: Engine, slack: FakeSlack
) -> None:
    repo = AlertRepo(engine)
    leads = threading.Event()
    runtime = SimpleNamespace(
        pipeline=SimpleNamespace(repo=repo), notifier=notifier(slack.base_url)
    )
    worker = DeliveryWorker(cast(Runtime, runtime), leads.is_set, idle_seconds=0.05)
    repo.record([record("left-by-the-last-leader", CX, NOW)], [])
    worker.start()
    try:
        worker.wake()  # woken while standing by: nothing is sent, the wake is spent
        time.sleep(0.2)
        assert (worker.rounds, slack.posted()) == (0, [])
        leads.set()  # this agent takes over; nobody wakes the worker
        _wait(lambda: len(slack.posted()) == 1, "the takeover's delivery")
    finally:
        worker.stop()
        assert worker.join(5)
    assert worker.rounds == 1
    assert _statuses(engine) == {"left-by-the-last-leader": "sent"}


def test_the_outbox_job_leaves_a_running_drain_to_the_worker(
    engine: Engine, fence: Fence, slack: FakeSlack
) -> None:
    """A drain at the rate limit's pace can last as long as its backlog: the outbox job
    must not hold the scheduler's thread (and a new detractor's alerts job) behind it."""
    repo = AlertRepo(engine, fence)
    sender = Tracked(notifier(slack.base_url))
    sending, release = threading.Event(), threading.Event()

    def hold(_alert: OutboxAlert) -> None:
        sending.set()
        assert release.wait(60)

    sender.after_send = hold
    repo.record([record(f"a{i}", CX, NOW + timedelta(seconds=i)) for i in range(3)], [])
    worker = _worker(repo, sender, fence)
    rt = SimpleNamespace(
        dry_run=False, pipeline=SimpleNamespace(repo=repo), notifier=sender, now=lambda: NOW
    )
    counts: list[dict[str, int]] = []
    try:
        worker.wake()
        assert sending.wait(30)  # the worker is in the middle of its drain
        job = threading.Thread(target=lambda: counts.append(jobs.outbox(cast(Runtime, rt))))
        job.start()
        job.join(20)  # before the fix it waited for the whole drain (here: forever)
        finished = not job.is_alive()
        release.set()
        job.join(30)
        assert finished, "the outbox job waited for the worker's drain"
        assert counts == [{"delivery_busy": 1}]
        _wait(lambda: set(_statuses(engine).values()) == {"sent"}, "the worker sent all")
    finally:
        release.set()
        worker.stop()
        assert worker.join(5)
    assert len(slack.posted()) == 3

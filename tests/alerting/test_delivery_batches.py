"""Delivery in batches: one claim commit per batch, channels side by side, each send
fenced and stamped, claims never started given back.

A real SQLite outbox; the notifier is an in-process recorder (the Slack adapter's own
behaviour is tested against the loopback fake elsewhere).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slackkit import record
from sqlalchemy import Engine, event, update

from agent.alerts.deliver import LANE, deliver
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.repo import AlertRepo
from agent.state import dialect
from agent.state.dialect import create_state_engine
from agent.state.leader_epoch import Fence
from agent.state.schema import alert_outbox, metadata
from connectors.common.errors import RetriableError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Recorder:
    """Posts in memory; ``before`` runs before each post (with the alert and channel)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []
        self.before: Callable[[OutboxAlert, str], None] = lambda _alert, _channel: None
        self.lock = threading.Lock()

    def resolve(self, alert: OutboxAlert) -> str:
        return alert.destination.channel

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        self.before(alert, channel_id)
        with self.lock:
            self.posts.append((channel_id, alert.alert_id))
            return Sent(channel=channel_id, ts=f"{len(self.posts)}.000100")

    def find_sent(self, alert: OutboxAlert, channel_id: str) -> Sent | None:
        return None

    def update(self, alert: OutboxAlert, target: Sent) -> Sent:
        return target

    def attach(self, alert: OutboxAlert, message: Sent) -> None:
        return None

    def find_attachment(self, alert: OutboxAlert, message: Sent) -> bool:
        return False

    def ids(self, channel: str | None = None) -> list[str]:
        return [a for c, a in self.posts if channel is None or c == channel]


def _commits(engine: Engine) -> list[int]:
    counted = [0]

    def count(_conn: Any) -> None:
        counted[0] += 1

    event.listen(engine, "commit", count)
    return counted


def _rows(repo: AlertRepo) -> dict[str, tuple[str, int]]:
    return {r.alert_id: (r.status, r.attempts) for r in repo.recent(500)}


def _record(repo: AlertRepo, ids_channels: list[tuple[str, str]]) -> None:
    repo.record(
        [record(a, c, NOW + timedelta(seconds=i)) for i, (a, c) in enumerate(ids_channels)], []
    )


def test_a_backlog_is_claimed_a_batch_per_commit_not_an_alert_per_commit(
    engine: Engine, repo: AlertRepo
) -> None:
    count = 2 * LANE + 5
    _record(repo, [(f"a{i:03}", "C1") for i in range(count)])
    commits = _commits(engine)
    notifier = Recorder()
    report = deliver(repo, notifier, NOW)
    assert report.sent == count
    assert notifier.ids() == [f"a{i:03}" for i in range(count)]  # oldest first
    # Three batches (20, 20, 5): three claim commits, the sends recorded on the next
    # claim's commit and the last ones on the final one. One commit per alert before.
    assert commits[0] == 4
    assert {s for s, _ in _rows(repo).values()} == {"sent"}


def test_channels_are_sent_side_by_side_each_in_its_own_order(repo: AlertRepo) -> None:
    _record(repo, [("a1", "CA"), ("a2", "CA"), ("b1", "CB"), ("a3", "CA"), ("b2", "CB")])
    notifier = Recorder()
    b_started = threading.Event()
    a_saw_b: list[bool] = []

    def before(_alert: OutboxAlert, channel: str) -> None:
        if channel == "CB":
            b_started.set()
        elif not a_saw_b:  # CA's first post waits for CB: only lanes side by side get there
            a_saw_b.append(b_started.wait(10))

    notifier.before = before
    report = deliver(repo, notifier, NOW)
    assert report.sent == 5
    assert a_saw_b == [True]  # CB's post started while CA's first was still waiting
    assert notifier.ids("CA") == ["a1", "a2", "a3"]
    assert notifier.ids("CB") == ["b1", "b2"]


def test_an_outage_mid_batch_gives_back_the_claims_never_sent(repo: AlertRepo) -> None:
    _record(repo, [(f"a{i}", "C1") for i in range(5)])
    notifier = Recorder()

    def before(alert: OutboxAlert, _channel: str) -> None:
        if alert.alert_id == "a2":
            raise RetriableError("slack", "chat.postMessage: service_unavailable (HTTP 503)")

    notifier.before = before
    report = deliver(repo, notifier, NOW)
    assert (report.sent, report.deferred) == (2, 3)
    assert _rows(repo) == {
        "a0": ("sent", 1),
        "a1": ("sent", 1),
        "a2": ("pending", 1),  # tried: maybe in Slack, looked for before it is sent again
        "a3": ("pending", 0),  # claimed with the batch, never tried: given back
        "a4": ("pending", 0),
    }


def test_the_drain_deadline_stops_a_batch_between_two_sends(repo: AlertRepo) -> None:
    _record(repo, [(f"a{i}", "C1") for i in range(5)])
    notifier = Recorder()

    def before(alert: OutboxAlert, _channel: str) -> None:
        if alert.alert_id == "a1":  # the grace period runs out while a1 is sent
            repo.drain_deadline = time.monotonic() - 1

    notifier.before = before
    report = deliver(repo, notifier, NOW)
    assert (report.sent, report.remaining) == (2, 3)
    assert [attempts for _, attempts in _rows(repo).values()].count(0) == 3


def test_each_send_is_recorded_at_the_moment_it_went_out(repo: AlertRepo) -> None:
    _record(repo, [(f"a{i}", "C1") for i in range(3)])
    ticks = iter(NOW + timedelta(seconds=10 * k) for k in range(1, 100))
    repo.clock = lambda: next(ticks)  # the running agent's clock, one tick per reading
    deliver(repo, Recorder(), NOW)
    sent_at = {r.alert_id: r.sent_at for r in repo.recent()}
    assert len(set(sent_at.values())) == 3  # one moment per send, not the round's start
    assert all(at is not None and at > NOW for at in sent_at.values())
    assert sent_at["a0"] < sent_at["a1"] < sent_at["a2"]  # type: ignore[operator]


@pytest.fixture
def fence(engine: Engine) -> Fence:
    leader = Fence(engine, pid=1)
    assert leader.take(holds_lock=False)
    return leader


def test_every_send_of_a_batch_confirms_the_epoch_right_before_it(
    engine: Engine, fence: Fence
) -> None:
    repo = AlertRepo(engine, fence)
    _record(repo, [(f"a{i}", "C1") for i in range(4)])
    notifier = Recorder()
    confirmed: list[str] = []
    real = fence.claim

    def claim(what: str = "a side effect") -> None:
        confirmed.append(what)
        real(what)

    fence.claim = claim  # type: ignore[method-assign]
    assert deliver(repo, notifier, NOW).sent == 4
    assert confirmed == [f"alert a{i}" for i in range(4)]


def test_delivery_reads_never_wait_for_a_writer_of_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A busy timeout this short turns any wait for the write lock into an error.
    monkeypatch.setattr(dialect, "SQLITE_BUSY_TIMEOUT", 0.05)
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    metadata.create_all(engine)
    fence = Fence(engine, pid=1)
    assert fence.take(holds_lock=False)
    repo = AlertRepo(engine, fence)
    _record(repo, [("a1", "C1")])
    with engine.begin() as writer:  # a webhook's answers being stored, lock held
        writer.execute(update(alert_outbox).values(last_error=None))
        (alert,) = repo.pending()  # the outbox page
        assert repo.status("a1") == "pending"
        repo.confirm(alert)  # the epoch check right before a send
    engine.dispose()


def test_the_next_batch_is_claimed_while_the_current_one_is_sent(repo: AlertRepo) -> None:
    _record(repo, [(f"a{i:03}", "C1") for i in range(2 * LANE)])
    claims: list[int] = []
    second_claimed = threading.Event()
    real = repo.claim_many

    def claim_many(pairs: list[tuple[str, str | None]]) -> set[str]:
        claimed = real(pairs)
        claims.append(len(pairs))
        if len(claims) == 2:
            second_claimed.set()
        return claimed

    repo.claim_many = claim_many  # type: ignore[method-assign]
    notifier = Recorder()
    during_first: list[bool] = []

    def before(alert: OutboxAlert, _channel: str) -> None:
        if alert.alert_id == "a000":  # the first batch's first post waits for the second claim
            during_first.append(second_claimed.wait(10))

    notifier.before = before
    assert deliver(repo, notifier, NOW).sent == 2 * LANE
    assert during_first == [True]
    assert claims == [LANE, LANE]


def test_a_batch_claimed_ahead_is_given_back_when_the_round_stops(repo: AlertRepo) -> None:
    _record(repo, [(f"a{i:03}", "C1") for i in range(2 * LANE)])
    notifier = Recorder()

    def before(alert: OutboxAlert, _channel: str) -> None:
        if alert.alert_id == "a001":
            raise RetriableError("slack", "chat.postMessage: service_unavailable (HTTP 503)")

    notifier.before = before
    report = deliver(repo, notifier, NOW)
    assert (report.sent, report.deferred) == (1, 2 * LANE - 1)
    attempts = {a: n for a, (_, n) in _rows(repo).items()}
    assert (attempts["a000"], attempts["a001"]) == (1, 1)
    assert {n for a, n in attempts.items() if a not in ("a000", "a001")} == {0}

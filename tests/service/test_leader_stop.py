"""Stopping as the leader: the lock released (as ``pg_locks`` shows), the lease ended,
the leadership visible in ``/metrics`` and ``/readyz``; the outbox drained until the
grace period ends, what remains reported, and sent by the next start.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from structlog.testing import capture_logs

from agent.alerts.model import OutboxAlert, Sent
from agent.state.leader import PostgresLeadership
from agent.state.leader_epoch import Fence
from tests.alerting.slackkit import record
from tests.service.agentkit import RecordingNotifier, agent_settings, build_agent, wait_for


def _advisory_locks(url: str, key: int) -> list[int]:
    """Backend pids holding the advisory lock ``key`` (pg_locks: classid high, objid low)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :hi AND objid = :lo AND objsubid = 1"
                ),
                {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
            ).all()
    finally:
        engine.dispose()
    return [int(r.pid) for r in rows]


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.postgres
def test_stopping_releases_the_lock_as_pg_locks_shows_and_ends_the_lease(
    tmp_path: Path, postgres_url: str
) -> None:
    agent = build_agent(agent_settings(tmp_path, state_url=postgres_url))
    lock = agent.leadership
    assert isinstance(lock, PostgresLeadership)
    thread = threading.Thread(target=lambda: agent.serve(install_signals=False))
    thread.start()
    try:
        wait_for(lambda: agent.health.role == "leader" and agent.server is not None, 30)
        assert _advisory_locks(postgres_url, lock.key) == [lock.backend_pid()]
        assert agent.server is not None
        port = agent.server.port
        metrics = _get(port, "/metrics")
        assert "ax_leader 1.0" in metrics
        assert f"ax_leader_epoch {float(agent.fence.epoch or 0)}" in metrics
        assert "ax_leadership_changes_total" in metrics
        ready = json.loads(_get(port, "/readyz"))
        assert ready["leader"]["epoch"] == agent.fence.epoch == 1
        assert ready["leader"]["pid"] > 0
        assert ready["leader"]["lease_expires_at"]
        assert ready["replica"] == agent.fence.replica
    finally:
        agent.request_stop()
        thread.join(30)
    assert not thread.is_alive()
    assert _advisory_locks(postgres_url, lock.key) == []  # released, though this process lives
    current = Fence(agent.store.engine).current()
    assert current is not None
    assert current.expired  # the lease was ended: a standby takes over at once
    assert agent.fence.epoch is None
    agent.store.close()


class SlowNotifier(RecordingNotifier):
    """A messaging vendor that takes ``delay`` seconds per message (its rate limit)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        time.sleep(self.delay)
        return super().send(alert, channel_id)


def test_stopping_drains_until_the_grace_period_and_a_restart_sends_the_rest(
    tmp_path: Path,
) -> None:
    settings = agent_settings(
        tmp_path,
        schedule={"grace_seconds": 3, "outbox": {"every": 3600}, "alerts": {"every": 3600}},
    )
    first = SlowNotifier(0.25)
    agent = build_agent(settings, first)
    thread = threading.Thread(target=lambda: agent.serve(install_signals=False))
    with capture_logs() as logs:
        thread.start()
        repo = agent.runtime.pipeline.repo
        # the first cycle's own posts are out (the worker sends them, not the outbox job)
        wait_for(lambda: "outbox" in agent.scheduler.last and not repo.pending_count(), 60)
        before = len(first.sent)
        now = datetime.now(UTC)
        ids = [f"burst-{i:02d}" for i in range(40)]
        agent.runtime.pipeline.repo.record([record(i, "C0CXALERTS", now) for i in ids], [])
        agent.request_stop()
        started = time.monotonic()
        thread.join(30)
        took = time.monotonic() - started
    assert not thread.is_alive()
    assert took < 3 + 2  # within the grace period, give or take the send in flight
    sent_first = [a.alert_id for a in first.sent[before:]]
    remaining = agent.runtime.pipeline.repo.pending_count()
    assert sent_first  # it went on delivering while stopping
    assert remaining == len(ids) - len(sent_first) > 0  # 40 x 0.25 s do not fit in 3 s
    reported = [e for e in logs if e["event"] == "alerts_remaining_at_stop"]
    assert [e["alerts_remaining"] for e in reported] == [remaining]
    agent.store.close()

    second = RecordingNotifier()
    again = build_agent(settings, second)
    again.run_once()
    again.store.close()
    sent_second = [a.alert_id for a in second.sent if a.alert_id.startswith("burst-")]
    assert sorted(sent_first + sent_second) == ids  # every one, none twice

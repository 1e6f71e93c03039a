"""Leadership epochs, leases and claims (``agent.state.leader_epoch``), on both dialects.

Two ``Fence`` objects on one database stand for two agents: only the current epoch's
claims win; an older epoch's claim, cursor commit or write record raises
``FencedError`` and makes nothing; job records of an older epoch never overwrite
what a newer leader set.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from agent.core.models import Response
from agent.core.ports import FieldUpdate
from agent.state.dialect import agent_identity, create_state_engine
from agent.state.errors import FencedError
from agent.state.leader_epoch import Fence
from agent.state.leader_lease import LeaderLease
from agent.state.leader_pg import PostgresLeadership
from agent.state.records import WrittenSettlement
from agent.state.schema import alert_outbox, leadership
from agent.state.store import StateStore


def _row(store: StateStore, alert_id: str = "a1") -> None:
    with store.engine.begin() as conn:
        conn.execute(
            alert_outbox.insert().values(
                alert_id=alert_id,
                rule_id="r",
                scope="account",
                subject="A1",
                kind="alert",
                payload={},
                status="pending",
                attempts=0,
                created_at=datetime.now(UTC),
            )
        )


def _claim(fence: Fence, alert_id: str = "a1") -> bool:
    where = (alert_outbox.c.alert_id == alert_id) & (alert_outbox.c.status == "pending")
    return fence.claim_row(alert_outbox, where, {"attempts": alert_outbox.c.attempts + 1})


def _expire(store: StateStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(leadership).values(lease_expires_at=datetime(2000, 1, 1, tzinfo=UTC)))


def test_epochs_strictly_increase_and_a_lease_blocks_a_second_leader(store: StateStore) -> None:
    first, second = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert first.take(holds_lock=False)
    assert first.epoch == 1
    assert not second.take(holds_lock=False)  # the lease is fresh
    _expire(store)
    assert second.take(holds_lock=False)
    assert second.epoch == 2
    assert first.epoch == 1  # it does not know yet; its next claim or heartbeat tells it
    assert not first.renew()
    assert first.epoch is None
    info = second.current()
    assert info is not None
    assert info.epoch == 2
    assert info.pid == 2
    assert not info.expired


def test_a_lock_holder_takes_over_at_once_from_a_leader_that_held_the_lock(
    store: StateStore,
) -> None:
    old, new = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert old.take(holds_lock=True, lock_pid=4242)
    # The old leader's lock session is gone (the new one won the lock): no lease wait.
    assert new.take(holds_lock=True, lock_pid=4343)
    assert new.epoch == 2


def test_a_lock_holder_waits_for_the_lease_of_a_leader_that_leads_by_lease_alone(
    store: StateStore,
) -> None:
    by_lease, other = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert by_lease.take(holds_lock=False, lock_pid=None)
    assert not other.take(holds_lock=True, lock_pid=99)


def test_only_the_current_epoch_claims_a_row_and_a_superseded_one_steps_down(
    store: StateStore,
) -> None:
    _row(store, "a1")
    _row(store, "a2")
    old, new = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert old.take(holds_lock=False)
    assert _claim(old, "a1")
    _expire(store)
    assert new.take(holds_lock=False)
    with pytest.raises(FencedError, match="superseded"):
        _claim(old, "a2")
    assert old.epoch is None  # it stepped down
    with pytest.raises(FencedError, match="not the leader"):
        _claim(old, "a2")
    assert _claim(new, "a1")  # an older epoch's claim is taken over (and looked up first)
    assert _claim(new, "a2")
    with store.engine.connect() as conn:
        rows = {r.alert_id: r for r in conn.execute(select(alert_outbox))}
    assert rows["a1"].claimed_epoch == rows["a2"].claimed_epoch == 2
    assert rows["a1"].attempts == 2
    assert rows["a2"].attempts == 1


def test_a_row_that_is_no_longer_claimable_is_refused_without_stepping_down(
    store: StateStore,
) -> None:
    _row(store)
    fence = Fence(store.engine)
    assert fence.take(holds_lock=False)
    with store.engine.begin() as conn:
        conn.execute(update(alert_outbox).values(status="sent"))
    assert not _claim(fence)
    assert fence.epoch == 1


def test_a_superseded_epoch_commits_no_cursor_and_records_no_write(store: StateStore) -> None:
    old, new = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert old.take(holds_lock=False)
    store.fence = old
    with store.transaction() as tx:
        tx.set_cursor("crm", "account", "1")
    _expire(store)
    assert new.take(holds_lock=False)
    with pytest.raises(FencedError), store.transaction() as tx:
        tx.record_written("crm", "account", [FieldUpdate(record_id="A1", values={"f": 1})])
    store.fence = Fence(store.engine, pid=1)  # a fresh agent, not leading
    with pytest.raises(FencedError), store.transaction() as tx:
        tx.set_cursor("crm", "account", "2")
    store.fence = None
    assert store.get_cursor("crm", "account") == "1"
    assert store.written_values("crm", "account") == {}
    with pytest.raises(FencedError):
        old.claim("a CRM write batch")
    new.claim("a CRM write batch")


def test_a_superseded_epoch_stores_no_settled_write_back(store: StateStore) -> None:
    """What a write-back settled is claimed against the epoch too: a superseded leader's
    late settlement would name records as settled that the new leader wrote since."""
    old, new = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert old.take(holds_lock=False)
    store.fence = old
    at = datetime(2025, 6, 1, tzinfo=UTC)
    store.settle_written("crm", "account", WrittenSettlement("specs", at, at), [{"A1": "d1"}])
    _expire(store)
    assert new.take(holds_lock=False)
    head = WrittenSettlement("other", at, at)
    with pytest.raises(FencedError):
        store.settle_written("crm", "account", head, [{"A1": "d2", "A2": "d3"}])
    store.fence = None
    settled = store.written_settlement("crm", "account")
    assert settled is not None
    assert settled.specs == "specs"
    assert store.settled_digests("crm", "account", ["A1", "A2"]) == {"A1": "d1"}


def test_job_records_carry_replica_and_epoch_and_an_older_epoch_never_overwrites(
    store: StateStore,
) -> None:
    old, new = Fence(store.engine, host="h1", pid=1), Fence(store.engine, host="h2", pid=2)
    assert old.take(holds_lock=False)
    store.fence = old
    cycle = store.start_cycle("outbox")
    _expire(store)
    assert new.take(holds_lock=False)
    store.fence = new
    mine = store.start_cycle("alerts")
    assert store.abandon_running_cycles("superseded", before_epoch=new.epoch) == 1
    assert not store.finish_cycle(cycle, "ok", {"alerts_sent": 3})  # the old leader, late
    assert store.finish_cycle(mine, "ok", {})
    records = {c.id: c for c in store.recent_cycles(5)}
    assert records[cycle].status == "failed"
    assert records[cycle].error == "superseded"
    assert (records[cycle].replica, records[cycle].epoch) == ("h1:1", 1)
    assert (records[mine].replica, records[mine].epoch) == ("h2:2", 2)


def test_resigning_ends_the_lease_so_a_standby_takes_over_at_once(store: StateStore) -> None:
    old, new = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert old.take(holds_lock=False)
    old.resign()
    assert old.epoch is None
    assert new.take(holds_lock=False)
    assert old.changes == 2
    assert new.changes == 1


@pytest.mark.postgres
def test_a_claim_racing_a_takeover_never_both_win(postgres_url: str) -> None:
    """The takeover waits for a claim in flight (the leadership row is locked FOR SHARE)
    and a claim after the takeover sees the new epoch: never both."""
    with StateStore.open(postgres_url) as store:
        _row(store)
        old, new = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
        assert old.take(holds_lock=False)
        holding = threading.Event()
        took: list[float] = []

        def takeover() -> None:
            holding.wait(10)
            _expire_later = time.monotonic()
            assert new.take(holds_lock=False, force=True)
            took.append(time.monotonic() - _expire_later)

        thread = threading.Thread(target=takeover)
        thread.start()
        with store.engine.begin() as conn:
            old.hold(conn, "a test commit")
            holding.set()
            time.sleep(0.5)  # the takeover waits for this transaction
            conn.execute(text("SELECT 1"))
        thread.join(10)
        assert took
        assert took[0] >= 0.4
        with pytest.raises(FencedError):
            _claim(old)
        assert _claim(new)


@pytest.mark.postgres
def test_a_standby_winning_the_lock_ends_a_paused_leaders_transaction_and_takes_over(
    postgres_url: str,
) -> None:
    """A leader paused inside a claim's transaction holds the leadership row FOR SHARE
    and the input version every answer's write moves, then loses its lock session (a
    failover, a network cut). The standby that wins the lock ends that leader's sessions
    first: it leads at once, and an answer is stored at once, instead of both waiting
    for the server's idle-transaction timeout."""
    old_engine = create_state_engine(
        postgres_url,
        poolclass=NullPool,
        connect_args={"application_name": agent_identity(4242, "old-host")},
    )
    old_lock = PostgresLeadership(postgres_url, "fence-test")
    new_lock = PostgresLeadership(postgres_url, "fence-test")
    try:
        with StateStore.open(postgres_url) as store:
            old = LeaderLease(old_lock, Fence(old_engine, "fence-test", host="old-host", pid=4242))
            assert old.try_lead()
            paused = old_engine.connect()
            paused.begin()
            old.fence.hold(paused, "a claim")
            paused.execute(text("UPDATE input_versions SET version = version + 1"))
            admin = create_engine(make_url(postgres_url), poolclass=NullPool)
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": old_lock.backend_pid()})
                conn.commit()
            admin.dispose()

            new = LeaderLease(new_lock, Fence(store.engine, "fence-test", host="new-host", pid=7))
            led: list[bool] = []
            thread = threading.Thread(target=lambda: led.append(new.try_lead()), daemon=True)
            thread.start()
            thread.join(5)
            at_once = not thread.is_alive()
            if not at_once:  # it waits for the paused transaction: end that, then fail
                with contextlib.suppress(Exception):
                    paused.rollback()
                thread.join(10)
            assert at_once, "the takeover waited for the paused leader's transaction"
            assert led == [True]
            answer = Response("r1", "a@b.example", 3, datetime.now(UTC), source="webhook")
            with store.transaction(lock_timeout=2) as tx:  # no wait for the paused leader
                assert len(tx.add_responses([answer]).added) == 1
            with contextlib.suppress(Exception):
                paused.close()  # its session was ended under it
    finally:
        old_lock.dispose()
        new_lock.dispose()
        old_engine.dispose()


@pytest.mark.postgres
def test_a_standby_after_an_expired_lease_spares_a_candidate_holding_the_lock(
    postgres_url: str,
) -> None:
    """The lease of a leader that is gone ran out; another candidate won the lock and is
    about to take the epoch. A standby that sees the expired lease takes over by it, but
    never ends that candidate's lock session: it is not the leader the lease names."""
    candidate = PostgresLeadership(postgres_url, "fence-test")
    standby = PostgresLeadership(postgres_url, "fence-test")
    try:
        with StateStore.open(postgres_url) as store:
            gone = Fence(store.engine, "fence-test", host="gone-host", pid=4242)
            assert gone.take(holds_lock=True, lock_pid=999_999)  # its lock session is gone
            _expire(store)
            assert candidate.try_acquire()
            lease = LeaderLease(standby, Fence(store.engine, "fence-test", host="b", pid=7))
            assert lease.try_lead()  # by the expired lease
            assert candidate.is_leader(), "the candidate's lock session was ended"
    finally:
        candidate.dispose()
        standby.dispose()


@pytest.mark.postgres
def test_a_standby_ends_the_sessions_of_a_leader_hung_past_its_lease_holding_the_lock(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader hung inside a claim's transaction keeps its lock session, and its lease
    runs out: the standby ends that leader's sessions and takes over at once."""
    old_name = agent_identity(4242, "old-host")
    monkeypatch.setattr("agent.state.leader_pg.identity", lambda: old_name)
    old_lock = PostgresLeadership(postgres_url, "fence-test")
    assert old_lock.try_acquire()  # its lock session carries the old leader's name
    monkeypatch.undo()
    old_engine = create_state_engine(
        postgres_url, poolclass=NullPool, connect_args={"application_name": old_name}
    )
    new_lock = PostgresLeadership(postgres_url, "fence-test")
    try:
        with StateStore.open(postgres_url) as store:
            old = Fence(old_engine, "fence-test", 0.5, host="old-host", pid=4242)
            assert old.take(holds_lock=True, lock_pid=old_lock.backend_pid())
            paused = old_engine.connect()
            paused.begin()
            old.hold(paused, "a claim")  # the leadership row held FOR SHARE, then a pause
            new = LeaderLease(new_lock, Fence(store.engine, "fence-test", host="b", pid=7))
            deadline = time.monotonic() + 10
            while not (info := new.fence.current()) or not info.expired:  # the lease runs out
                assert time.monotonic() < deadline
                time.sleep(0.05)
            led: list[bool] = []
            thread = threading.Thread(target=lambda: led.append(new.try_lead()), daemon=True)
            thread.start()
            thread.join(5)
            at_once = not thread.is_alive()
            if not at_once:
                with contextlib.suppress(Exception):
                    paused.rollback()
                thread.join(10)
            assert at_once, "the takeover waited for the hung leader's transaction"
            assert led == [True]
            assert not old_lock.is_leader()  # its lock session was ended
            with contextlib.suppress(Exception):
                paused.close()
    finally:
        old_lock.dispose()
        new_lock.dispose()
        old_engine.dispose()

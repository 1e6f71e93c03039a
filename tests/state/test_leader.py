"""Leadership: one agent leads; SQLite refuses a second, PostgreSQL lets it stand by."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from agent.state.errors import LeadershipError
from agent.state.leader import (
    FileLeadership,
    LocalLeadership,
    PostgresLeadership,
    leadership_for,
)
from agent.state.store import StateStore

StartHolder = Callable[[str], "subprocess.Popen[str]"]

_HOLDER_SCRIPT = """
import sys, time
from agent.config.logging import configure_logging
from agent.state.leader import leadership_for
configure_logging(json=True)
lead = leadership_for(sys.argv[1], "test-leader")
lead.acquire(wait=False)
print("leading", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder_process() -> Iterator[StartHolder]:
    """Start a separate agent-like process that takes the leadership of a URL."""
    started: list[subprocess.Popen[str]] = []

    def start(url: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER_SCRIPT, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "leading":
            proc.kill()
            pytest.fail(f"holder did not start: {proc.communicate()}")
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _wait_until(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# -- SQLite -------------------------------------------------------------------------


def test_a_second_agent_on_a_sqlite_file_is_refused_naming_file_and_pid(
    sqlite_url: str,
) -> None:
    first = leadership_for(sqlite_url, "test-leader")
    second = leadership_for(sqlite_url, "test-leader")
    assert isinstance(first, FileLeadership)
    assert first.try_acquire()
    assert first.is_leader()
    assert not second.try_acquire()
    with pytest.raises(LeadershipError) as refused:
        second.acquire()  # SQLite cannot stand by, even when asked to wait
    message = str(refused.value)
    assert str(first.database) in message
    assert f"pid {os.getpid()}" in message
    assert "PostgreSQL" in message
    first.release()
    assert not first.is_leader()
    assert second.try_acquire()
    second.release()


def test_a_sqlite_lock_held_by_another_process_refuses_this_one(
    sqlite_url: str, holder_process: StartHolder
) -> None:
    proc = holder_process(sqlite_url)
    lead = leadership_for(sqlite_url, "test-leader")
    with pytest.raises(LeadershipError, match=rf"pid {proc.pid} on "):
        lead.acquire(wait=False)
    holder = lead.holder()
    assert holder is not None
    assert f"pid {proc.pid}" in holder


def test_a_killed_sqlite_leader_frees_the_file(
    sqlite_url: str, holder_process: StartHolder
) -> None:
    proc = holder_process(sqlite_url)
    lead = leadership_for(sqlite_url, "test-leader")
    assert not lead.try_acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert lead.holder() is None  # the dead pid left in the file is not reported
    assert lead.try_acquire()
    lead.release()


def test_the_sqlite_lock_file_sits_beside_the_database(sqlite_url: str) -> None:
    with StateStore.open(sqlite_url) as store, store.leadership() as lead:
        assert isinstance(lead, FileLeadership)
        assert store.path is not None
        assert lead.lock_path == Path(f"{store.path}.lock")
        assert lead.lock_path.exists()


def test_replacing_the_lock_file_loses_the_leadership(sqlite_url: str) -> None:
    lead = leadership_for(sqlite_url)
    assert isinstance(lead, FileLeadership)
    assert lead.try_acquire()
    lead.lock_path.unlink()
    assert not lead.is_leader()
    assert lead.try_acquire()
    lead.release()


def test_in_memory_sqlite_always_leads() -> None:
    lead = leadership_for("sqlite://")
    assert isinstance(lead, LocalLeadership)
    assert lead.acquire(wait=False)
    assert lead.is_leader()
    lead.release()
    assert not lead.is_leader()


# -- PostgreSQL ----------------------------------------------------------------------


@pytest.fixture
def pg_pair(postgres_url: str) -> Iterator[tuple[PostgresLeadership, PostgresLeadership]]:
    first = PostgresLeadership(postgres_url, "test-leader")
    second = PostgresLeadership(postgres_url, "test-leader")
    yield first, second
    first.dispose()
    second.dispose()


@pytest.mark.postgres
def test_one_postgres_agent_leads_and_the_other_takes_over_on_release(
    pg_pair: tuple[PostgresLeadership, PostgresLeadership],
) -> None:
    first, second = pg_pair
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.is_leader()
    assert not second.is_leader()
    assert second.holder() == f"ax-agent pid {os.getpid()} on {os.uname().nodename} " + (
        f"(backend pid {first.backend_pid()})"
    )
    with pytest.raises(LeadershipError, match="already leads"):
        second.acquire(wait=False)
    first.release()
    assert not first.is_leader()
    assert second.try_acquire()
    assert second.is_leader()


@pytest.mark.postgres
def test_a_lost_connection_is_lost_leadership(
    pg_pair: tuple[PostgresLeadership, PostgresLeadership], postgres_url: str
) -> None:
    first, second = pg_pair
    assert first.try_acquire()
    backend = first.backend_pid()
    admin = create_engine(postgres_url, poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
    admin.dispose()
    assert _wait_until(second.try_acquire)
    assert not first.is_leader()
    assert not first.try_acquire()  # reconnects, but the other agent leads now


@pytest.mark.postgres
def test_a_standby_waits_and_leads_when_the_leader_releases(
    pg_pair: tuple[PostgresLeadership, PostgresLeadership],
) -> None:
    first, second = pg_pair
    assert first.try_acquire()
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(second.acquire(poll_seconds=0.05)))
    waiter.start()
    time.sleep(0.3)
    assert outcome == []
    first.release()
    waiter.join(timeout=10)
    assert outcome == [True]
    assert second.is_leader()


@pytest.mark.postgres
def test_a_standby_stops_waiting_when_told(
    pg_pair: tuple[PostgresLeadership, PostgresLeadership],
) -> None:
    first, second = pg_pair
    assert first.try_acquire()
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert second.acquire(poll_seconds=0.05, stop=stop) is False
    assert not second.is_leader()


@pytest.mark.postgres
def test_a_killed_postgres_leader_process_is_replaced(
    postgres_url: str, holder_process: StartHolder
) -> None:
    proc = holder_process(postgres_url)
    lead = PostgresLeadership(postgres_url, "test-leader")
    try:
        assert not lead.try_acquire()
        holder = lead.holder()
        assert holder is not None
        assert f"pid {proc.pid} " in holder
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_until(lead.try_acquire)
    finally:
        lead.dispose()


@pytest.mark.postgres
def test_different_names_are_different_locks(postgres_url: str) -> None:
    one = PostgresLeadership(postgres_url, "agent-one")
    two = PostgresLeadership(postgres_url, "agent-two")
    try:
        assert one.try_acquire()
        assert two.try_acquire()
        assert one.key != two.key
    finally:
        one.dispose()
        two.dispose()


@pytest.mark.postgres
def test_an_unreachable_postgres_is_a_state_error_not_a_crash() -> None:
    from agent.state.errors import StateError

    lead = PostgresLeadership("postgresql://ax:pw@127.0.0.1:1/ax?connect_timeout=1")
    with pytest.raises(StateError, match="cannot reach"):
        lead.try_acquire()
    lead.dispose()

"""A standby's answers and the leader's notice of them commit together (PostgreSQL).

A standby serving the webhook tells the leader of the answers it stores with a
``NOTIFY`` sent in the storing transaction: the leader is told exactly when the answers
become visible, a notice that cannot be sent leaves them unstored (the webhook answers
503 and the sender sends them again), and a transaction rolled back tells nothing. The
leader is stood in for by a connection listening on the wake-up channel.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import OperationalError

from agent.core.models import Response
from agent.service import process, wake
from agent.service.process import AgentProcess
from agent.service.runtime import Runtime
from agent.service.wake import Wake, channel, decode
from agent.service.webhook import RETRY_AFTER_SECONDS
from tests.service.agentkit import (
    WEBHOOK_SECRET,
    agent_settings,
    answer_body,
    build_agent,
    leading_agent,
)
from tests.service.httpkit import post_signed

pytestmark = pytest.mark.postgres

#: The longest a notice that is due may take to arrive (it arrives at once when due).
_DUE_SECONDS = 5.0


@dataclass
class Listener:
    """A connection listening on the agent's wake-up channel, as the leader's does."""

    conn: Connection
    #: For each answer noted after its commit: (its id, visible then, the wake-ups
    #: delivered by then).
    at_noting: list[tuple[str, bool, list[Wake]]] = field(default_factory=list)

    def wakes(self, timeout: float) -> list[Wake]:
        """The wake-ups delivered so far, waiting up to ``timeout`` s for a first one."""
        driver: Any = self.conn.connection.driver_connection
        got = [decode(str(n.payload)) for n in driver.notifies(timeout=timeout, stop_after=1)]
        if got:  # and whatever else is there already
            got += [decode(str(n.payload)) for n in driver.notifies(timeout=0.0)]
        return got


@dataclass
class Standby:
    agent: AgentProcess
    base: str
    listener: Listener

    def post(self, body: object) -> tuple[int, Any]:
        return post_signed(self.base, body, WEBHOOK_SECRET)


@pytest.fixture
def standby(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Standby]:
    """An agent standing by on PostgreSQL, serving its webhook; a listener on its channel
    records, each time the agent notes answers after their commit, what it was told."""
    agent = build_agent(agent_settings(tmp_path, state_url=postgres_url))
    agent.health.role = "standby"
    opened = agent.store.engine.connect()
    listen = opened.execution_options(isolation_level="AUTOCOMMIT")
    listen.execute(text(f'LISTEN "{channel(agent.store)}"'))
    listener = Listener(listen)
    original = AgentProcess._received

    def received(self: AgentProcess, added: Sequence[Response]) -> None:
        told = listener.wakes(_DUE_SECONDS)  # committed: the notice is due by now
        for r in added:
            visible = self.store.has_response(r.source, r.response_id)
            listener.at_noting.append((r.response_id, visible, told))
        original(self, added)

    monkeypatch.setattr(AgentProcess, "_received", received)
    server = agent._server()
    server.start()
    try:
        yield Standby(agent, f"http://127.0.0.1:{server.port}", listener)
    finally:
        server.stop()
        opened.close()
        agent.store.close()
        agent.leadership.release()


def test_the_leader_is_told_of_an_answer_as_it_becomes_visible(
    standby: Standby, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_commit: list[tuple[bool, list[Wake]]] = []
    original = wake.notify_in

    def sent_in_the_transaction(conn: Connection, name: str, wake_up: Wake) -> None:
        original(conn, name, wake_up)
        # sent, not committed: neither the answer nor the notice is out yet
        (key,) = wake_up.answers or ()
        before_commit.append((standby.agent.store.has_response(*key), standby.listener.wakes(0.3)))

    monkeypatch.setattr(process, "notify_in", sent_in_the_transaction, raising=False)
    status, body = standby.post([answer_body("p-1", "p1@acct2.example", 9)])
    assert (status, body["accepted"]) == (200, 1)
    status, body = standby.post([answer_body("d-1", "p1@acct4.example", 2)])
    assert (status, body["accepted"]) == (200, 1)

    assert standby.listener.at_noting == [
        ("p-1", True, [Wake(None, (("webhook", "p-1"),))]),
        ("d-1", True, [Wake("alerts", (("webhook", "d-1"),))]),
    ]
    assert before_commit == [(False, []), (False, [])]


def test_a_notice_the_database_refuses_leaves_the_answer_unstored_until_resent(
    standby: Standby, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses the notice (a payload of 8,000 bytes or more): the answer is
    not stored and the sender told to send it again; sent again, it is stored once and
    the leader told of it once."""
    faulty = [True]
    original = wake.encode

    def refused(wake_up: Wake, limit: int = wake.PAYLOAD_LIMIT) -> list[str]:
        return ["x" * 9_000] if faulty[0] else original(wake_up, limit)

    monkeypatch.setattr(wake, "encode", refused)
    before = standby.agent.store.count_responses()
    answer = answer_body("r-1", "p1@acct2.example", 3)
    status, body = standby.post(answer)
    assert status == 503, body
    assert body["retry_after"] == RETRY_AFTER_SECONDS
    assert "none was stored: send the same request again" in body["error"]
    assert not standby.agent.store.has_response("webhook", "r-1")
    assert standby.listener.at_noting == []

    faulty[0] = False
    status, body = standby.post(answer)
    assert (status, body["accepted"], body["repeated"]) == (200, 1, 0)
    assert standby.agent.store.count_responses() == before + 1
    # the first notice the listener got is the resend's: the refused one never went out
    assert standby.listener.at_noting == [("r-1", True, [Wake("alerts", (("webhook", "r-1"),))])]
    status, body = standby.post(answer)
    assert (status, body["repeated"]) == (200, 1)  # a repeat tells nothing more
    assert standby.listener.wakes(0.3) == []


def test_a_storing_transaction_rolled_back_tells_the_leader_nothing(
    standby: Standby, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit itself fails (the connection lost as it commits): neither the answer
    nor its notice is out; the sender's resend brings both."""
    engine = standby.agent.store.engine
    failing = [True]

    def lost(_conn: Connection) -> None:
        if failing and failing.pop():
            raise OperationalError("COMMIT", {}, ConnectionResetError("lost while committing"))

    answer = answer_body("c-1", "p1@acct2.example", 8)
    event.listen(engine, "commit", lost)
    try:
        status, body = standby.post(answer)
    finally:
        event.remove(engine, "commit", lost)
    assert status == 503, body
    assert not standby.agent.store.has_response("webhook", "c-1")

    status, body = standby.post(answer)
    assert (status, body["accepted"]) == (200, 1)
    assert standby.listener.at_noting == [("c-1", True, [Wake(None, (("webhook", "c-1"),))])]


def test_after_a_lost_wake_up_the_next_answer_asks_for_a_full_read(
    standby: Standby, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wake-up sent on its own (a Slack action's) failed: the next answers' notice
    asks the leader to read the state in full, and the one after names its answers."""
    original = wake.notify
    failing = [True]

    def once_failing(store: Any, wake_up: Wake) -> None:
        if failing and failing.pop():
            raise OSError("the database went away")
        original(store, wake_up)

    monkeypatch.setattr(process, "notify", once_failing)
    standby.agent._wake_leader("outbox")
    assert standby.post(answer_body("n-1", "p1@acct2.example", 9))[0] == 200
    assert standby.post(answer_body("n-2", "p1@acct4.example", 9))[0] == 200
    assert standby.listener.at_noting == [
        ("n-1", True, [Wake(None, None)]),
        ("n-2", True, [Wake(None, (("webhook", "n-2"),))]),
    ]


def test_the_channel_is_asked_of_the_database_once_per_store(standby: Standby) -> None:
    asked: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "current_database()" in statement:
            asked.append(statement)

    store = standby.agent.store
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        for i in range(3):
            assert standby.post(answer_body(f"q-{i}", "p1@acct2.example", 9))[0] == 200
        wake.notify(store, Wake("outbox"))
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert asked == []  # asked when the listener started, not per answer
    assert [told for _id, _visible, told in standby.listener.at_noting] == [
        [Wake(None, (("webhook", f"q-{i}"),))] for i in range(3)
    ]


def test_a_slack_action_on_a_standby_wakes_the_outbox_naming_no_answers(
    standby: Standby,
) -> None:
    """A closed loop changes alert states only: the wake-up says no answers were stored,
    so the leader does not read the state again in full."""
    standby.agent._slack_acted()
    assert standby.listener.wakes(_DUE_SECONDS) == [Wake("outbox", ())]


def test_the_leader_keeps_its_figures_for_a_wake_up_naming_no_answers(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = agent_settings(tmp_path, state_url=postgres_url)
    with leading_agent(settings, datetime.now(UTC)) as leader:
        full_reads: list[bool] = []
        original = Runtime.data_changed

        def data_changed(self: Runtime, *, withdraw: bool = False) -> None:
            full_reads.append(True)
            original(self, withdraw=withdraw)

        monkeypatch.setattr(Runtime, "data_changed", data_changed)
        triggered: list[str] = []
        monkeypatch.setattr(leader.scheduler, "trigger", triggered.append)
        leader._woken([Wake("outbox", ())])
        assert full_reads == []
        leader._woken([Wake("outbox", None)])  # not said: read in full
        assert full_reads == [True]

"""Answers another replica stores reach the leader's figures.

Every replica serves the webhook; the leader keeps its figures in parts, updated from
the answers it is told of. Two agents serve in this process on one PostgreSQL state:
a promoter's answer posted to the standby's webhook wakes no job, yet the leader's
next document holds it, as a full computation from the stored state does, without
reading the state in full. What a notification cannot carry, or a listener may have
missed, has the figures read again in full.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.config.service import JOB_NAMES
from agent.core.document import AccountMetrics
from agent.core.incremental import Figures
from agent.core.models import Response
from agent.service import process
from agent.service.process import AgentProcess
from agent.service.wake import PAYLOAD_LIMIT, Wake, WakeListener, decode, encode, notify
from agent.state.leader import leadership_for
from agent.state.leader_epoch import Fence
from agent.state.store import StateStore
from agent.sync.figures import CycleFigures
from tests.service.agentkit import (
    WEBHOOK_SECRET,
    RecordingNotifier,
    agent_settings,
    answer_body,
    build_agent,
    wait_for,
)
from tests.service.httpkit import post_signed

HOUR = {"every": 3600}


def _serve(agent: AgentProcess) -> threading.Thread:
    thread = threading.Thread(target=lambda: agent.serve(install_signals=False), daemon=True)
    thread.start()
    return thread


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[AgentProcess, AgentProcess]]:
    """A leader after its first cycle, and a standby serving its webhook."""
    settings = agent_settings(
        tmp_path,
        state_url=postgres_url,
        schedule=dict.fromkeys(JOB_NAMES, HOUR) | {"standby_poll_seconds": 0.2},
    )
    leader = build_agent(settings, RecordingNotifier())
    threads = [_serve(leader)]
    standby: AgentProcess | None = None
    try:
        wait_for(lambda: leader.health.role == "leader" and "outbox" in leader.scheduler.last, 60)
        standby = AgentProcess(
            settings,
            StateStore.open(settings.state_url),
            leadership_for(settings.state_url),
            notifier=RecordingNotifier(),
        )
        threads.append(_serve(standby))
        wait_for(lambda: standby.health.role == "standby" and standby.server is not None, 30)
        yield leader, standby
    finally:
        for agent in (standby, leader):
            if agent is not None:
                agent.request_stop()
        for thread in threads:
            thread.join(30)
        for agent in (standby, leader):
            if agent is not None:
                agent.store.close()
    assert not any(t.is_alive() for t in threads)


def _account(agent: AgentProcess, account_id: str) -> AccountMetrics:
    document = agent.runtime.computed().document
    return next(a for a in document.accounts if a.id == account_id)


def _recomputed(agent: AgentProcess, account_id: str) -> AccountMetrics:
    """The account in a full computation from the store, as of the agent's last document."""
    as_of = agent.runtime.computed().document.as_of
    full = CycleFigures(agent.store, agent.runtime.crm.name, agent.settings.metrics)
    return next(a for a in full.computed(as_of).document.accounts if a.id == account_id)


def _post(agent: AgentProcess, body: object) -> None:
    assert agent.server is not None
    assert post_signed(f"http://127.0.0.1:{agent.server.port}", body, WEBHOOK_SECRET)[0] == 200


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Counts the calls of ``owner.name`` from now on."""
    calls: list[int] = []
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.postgres
def test_a_promoter_stored_by_the_standby_is_in_the_leaders_figures(
    replicas: tuple[AgentProcess, AgentProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    leader, standby = replicas
    assert _account(leader, "A2").respondents == 0  # the even accounts have not answered
    figures = leader.runtime.figures
    assert figures is not None
    resets = _counting(monkeypatch, figures, "reset")

    _post(standby, answer_body("standby-9", "p1@acct2.example", 9))
    assert leader.store.has_response("webhook", "standby-9")
    with contextlib.suppress(AssertionError):  # compared in full below
        wait_for(lambda: _account(leader, "A2").respondents == 1, 10)
    truth = _recomputed(leader, "A2")
    assert (truth.respondents, truth.promoters, truth.nps) == (1, 1, 100.0)
    assert _account(leader, "A2") == truth
    assert resets == []  # told which answer: the state was not read again in full
    assert "alerts" not in standby.scheduler.last  # a promoter wakes no job


@pytest.mark.postgres
def test_answers_told_between_two_computations_cost_one_partial_pass(
    replicas: tuple[AgentProcess, AgentProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    leader, standby = replicas
    _account(leader, "A2")  # computed: what follows is noted for the next computation
    told: list[str] = []
    original = CycleFigures.responses_added

    def noting(figures: CycleFigures, responses: Sequence[Response]) -> None:
        original(figures, responses)
        if figures is leader.runtime.figures:
            told.extend(r.response_id for r in responses)

    monkeypatch.setattr(CycleFigures, "responses_added", noting)
    loads = _counting(monkeypatch, Figures, "load")
    refreshes = _counting(monkeypatch, Figures, "refresh")
    _post(standby, answer_body("s-1", "p1@acct2.example", 9))
    _post(standby, answer_body("s-2", "p2@acct4.example", 10))
    _post(
        standby,
        [answer_body("s-3", "p1@acct6.example", 8), answer_body("s-4", "p2@acct6.example", 7)],
    )
    wait_for(lambda: sorted(told) == ["s-1", "s-2", "s-3", "s-4"], 15)

    for account in ("A2", "A4", "A6"):
        assert _account(leader, account) == _recomputed(leader, account)
    assert len(refreshes) == 1 + 3  # the leader's one pass, then the three full computations
    assert len(loads) == 3  # only the full computations of this test loaded the state


@pytest.mark.postgres
def test_the_listener_asks_for_a_full_read_when_it_starts_then_passes_the_answers_on(
    postgres_url: str,
) -> None:
    woken: list[list[Wake]] = []
    with StateStore.open(postgres_url) as store:
        listener = WakeListener(store, lambda wakes: woken.append(list(wakes)))
        listener.start()
        try:
            wait_for(lambda: woken, 15)
            assert woken == [[Wake()]]  # what was sent before it listened: read in full
            many = tuple(("webhook", f"answer-{i:05d}") for i in range(1_000))
            notify(store, Wake("alerts", many))
            wait_for(lambda: sum(len(w.answers or ()) for b in woken[1:] for w in b) == 1_000)
        finally:
            listener.stop()
    told = [w for batch in woken[1:] for w in batch]
    assert len(told) > 1  # spread over several notifications of one transaction
    assert [w.job for w in told] == ["alerts"] + [None] * (len(told) - 1)
    assert tuple(k for w in told for k in w.answers or ()) == many


def test_a_payload_stays_under_the_limit_or_says_nothing_of_the_answers() -> None:
    keys = tuple(("webhook", f"r-{i}" * (1 + i % 5)) for i in range(3_000))
    payloads = encode(Wake("alerts", keys))
    assert all(len(p.encode()) <= PAYLOAD_LIMIT for p in payloads)
    assert tuple(k for p in payloads for k in decode(p).answers or ()) == keys
    assert decode(payloads[0]).job == "alerts"
    # too many answers for the notifications of one batch, or one key too long: not named
    assert [decode(p) for p in encode(Wake("alerts", keys * 20))] == [Wake("alerts")]
    assert [decode(p) for p in encode(Wake(None, (("webhook", "x" * 9_000),)))] == [Wake()]
    # an agent of an older version sends the job's name alone
    assert decode("alerts") == Wake("alerts")
    assert decode(encode(Wake("outbox"))[0]) == Wake("outbox")


def _answer(response_id: str, email: str, score: int) -> Response:
    at = datetime.now(UTC) - timedelta(minutes=5)
    return Response(response_id, email, score, at, source="webhook")


def test_a_new_leader_reads_what_it_was_not_told(tmp_path: Path) -> None:
    """Answers another replica stored while it led and this one did not listen are in
    this one's figures once it takes the leadership back."""
    agent = build_agent(agent_settings(tmp_path))
    try:
        agent.run_once()
        assert _account(agent, "A2").respondents == 0
        other = Fence(agent.store.engine, pid=agent.fence.pid + 1)
        assert other.take(holds_lock=False)  # another replica leads for a while ...
        with agent.store.transaction() as tx:  # ... and stores an answer
            tx.add_responses([_answer("elsewhere", "p1@acct2.example", 9)])
        other.resign()
        assert agent.lease.try_lead()
        agent._took_over()
        assert _account(agent, "A2") == _recomputed(agent, "A2")
        assert _account(agent, "A2").respondents == 1
    finally:
        agent.store.close()
        agent.leadership.release()


def test_a_lost_wake_up_has_the_next_one_ask_for_a_full_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Wake] = []
    failing = [True]

    def notify_once_failing(_store: StateStore, wake: Wake) -> None:
        if failing.pop() if failing else False:
            raise OSError("the database went away")
        sent.append(wake)

    monkeypatch.setattr(process, "notify", notify_once_failing)
    with _standing_by(tmp_path) as agent:
        agent._received([_answer("lost", "p1@acct2.example", 9)])
        agent._received([_answer("next", "p1@acct4.example", 9)])
        agent._received([_answer("then", "p1@acct6.example", 2)])
    assert sent == [Wake(None, None), Wake("alerts", (("webhook", "then"),))]


def test_a_wake_up_lost_while_another_is_sent_still_has_the_next_ask_for_a_full_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two webhook threads of a standby tell the leader at once: one notice is lost
    while the other is on its way. The one that went out was built before the loss,
    so it cannot stand for it: the next notice still asks for a full read."""
    sent: list[Wake] = []
    sending, go = threading.Event(), threading.Event()

    def notify_slowly_or_failing(_store: StateStore, wake: Wake) -> None:
        if threading.current_thread().name == "slow":
            sending.set()
            assert go.wait(10)
        elif wake.answers == (("webhook", "lost"),):
            raise OSError("the database went away")
        sent.append(wake)

    monkeypatch.setattr(process, "notify", notify_slowly_or_failing)
    with _standing_by(tmp_path) as agent:
        slow = threading.Thread(
            target=lambda: agent._received([_answer("slow", "p1@acct2.example", 9)]), name="slow"
        )
        slow.start()
        assert sending.wait(10)
        agent._received([_answer("lost", "p1@acct4.example", 9)])
        go.set()
        slow.join(10)
        agent._received([_answer("next", "p1@acct6.example", 9)])
    assert sent == [Wake(None, (("webhook", "slow"),)), Wake(None, None)]


@contextlib.contextmanager
def _standing_by(tmp_path: Path) -> Iterator[AgentProcess]:
    """An agent standing by (its webhook's answers are told to another leader)."""
    agent = build_agent(agent_settings(tmp_path))
    try:
        agent.health.role = "standby"
        yield agent
    finally:
        agent.store.close()
        agent.leadership.release()


def test_answers_a_new_leader_takes_wait_for_its_computation_not_its_last_leaderships(
    tmp_path: Path,
) -> None:
    """Another replica led meanwhile and decided over figures this one never saw. An
    answer the new leader's answers worker takes before its first computation must not
    be decided over the figures of this one's last leadership: a condition they hold
    false would re-arm the other's alert (and the next cycle would send it again), one
    they hold true would alert anew. The alerts job decides it, over the state read in
    full."""
    agent = build_agent(agent_settings(tmp_path))
    try:
        agent.run_once()
        other = Fence(agent.store.engine, pid=agent.fence.pid + 1)
        assert other.take(holds_lock=False)  # another replica leads for a while
        other.resign()
        assert agent.lease.try_lead()
        agent._took_over()
        triggered: list[str] = []
        agent.runtime.trigger, agent.runtime.answered = triggered.append, lambda: None
        with agent.store.transaction() as tx:
            added = tx.add_responses([_answer("after", "p1@acct1.example", 9)]).added
        agent.runtime.responses_added(added)
        assert agent.answers.round() is None
        assert triggered == ["alerts"]
    finally:
        agent.store.close()
        agent.leadership.release()


def test_answers_stored_after_the_lease_was_lost_are_told_to_the_next_leader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat found the lease lost while the scheduler's thread is in a long job:
    the agent shows the leader's role until that job ends, but the answers its webhook
    stores meanwhile are the next leader's to decide, so it is told of them."""
    sent: list[Wake] = []
    monkeypatch.setattr(process, "notify", lambda _store, wake: sent.append(wake))
    agent = build_agent(agent_settings(tmp_path))
    try:
        assert agent.lease.try_lead()
        agent.health.role = "leader"
        agent.fence.lose("lease expired")  # what the heartbeat thread does
        agent._received([_answer("late", "p1@acct2.example", 2)])
    finally:
        agent.store.close()
        agent.leadership.release()
    assert sent == [Wake("alerts", (("webhook", "late"),))]

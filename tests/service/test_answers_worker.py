"""The answers worker: a new answer's alert is decided on its own thread, from the last
computation's published figures, never waiting for the scheduler's running job; the
cycle deciding it again sends nothing twice; it decides nothing once the agent no
longer leads; answers a dead process never decided are decided by the next cycle."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_slack import CHANNELS, TOKEN, FakeSlack
from sqlalchemy import func, select

from agent.core.incremental import Figures
from agent.core.models import Response
from agent.service import jobs, process
from agent.service.answers import AnswersWorker
from agent.service.process import AgentProcess
from agent.service.runtime import Runtime
from agent.state.errors import FencedError
from agent.state.leader import leadership_for
from agent.state.schema import alert_outbox
from agent.state.store import StateStore
from tests.service.agentkit import RecordingNotifier, agent_settings, build_agent, wait_for
from tests.service.httpkit import post_signed

WEBHOOK_SECRET = "whsec-test-1234"
HOUR = {"every": 3600}
#: The shipped rules post to account-management too.
CHANNELS_ALL = {**CHANNELS, "account-management": CHANNELS["cx-alerts"]}


def _alert(response_id: str, source: str = "webhook") -> str:
    return f"executive-detractor:{source}/{response_id}"


def _posted(slack: FakeSlack, alert_id: str) -> int:
    """How many messages in the Slack fake carry ``alert_id``."""
    return sum(
        1
        for messages in list(slack.messages.values())
        for m in list(messages)
        if m.get("metadata", {}).get("event_payload", {}).get("alert_id") == alert_id
    )


def _rows(agent: AgentProcess, alert_id: str) -> int:
    with agent.store.engine.connect() as conn:
        query = select(func.count()).where(alert_outbox.c.alert_id == alert_id)
        return int(conn.execute(query).scalar_one())


def _answer(response_id: str, account: int, person: int = 0) -> Response:
    at = datetime.now(UTC) - timedelta(minutes=5)
    return Response(response_id, f"p{person}@acct{account}.example", 2, at, source="webhook")


def _store(agent: AgentProcess, answer: Response) -> None:
    """What the webhook does before its 200: store, then tell the runtime."""
    with agent.store.transaction() as tx:
        tx.add_responses([answer])
    agent.runtime.responses_added([answer])


@pytest.fixture
def serving(tmp_path: Path, slack: FakeSlack) -> Iterator[AgentProcess]:
    """An agent serving (scheduler, answers and delivery workers, HTTP) with the real
    Slack notifier against the Slack fake; its first cycle done."""
    settings = agent_settings(
        tmp_path,
        responses=False,
        slack={"bot_token": TOKEN, "base_url": slack.base_url, "channels": CHANNELS_ALL},
        schedule=dict.fromkeys(jobs.JOBS, HOUR) | {"grace_seconds": 10},
    )
    leadership = leadership_for(settings.state_url)
    leadership.acquire(wait=False)
    agent = AgentProcess(settings, StateStore.open(settings.state_url), leadership)
    thread = threading.Thread(target=lambda: agent.serve(install_signals=False))
    thread.start()
    try:
        wait_for(lambda: agent.health.role == "leader" and "outbox" in agent.scheduler.last, 60)
        yield agent
    finally:
        agent.request_stop()
        thread.join(60)
        agent.store.close()
    assert not thread.is_alive()


def test_an_answer_reaches_slack_while_the_scheduler_is_blocked_in_a_job(
    serving: AgentProcess, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = serving
    entered, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def long_job(_rt: Runtime) -> dict[str, int]:
        entered.set()
        release.wait(60)
        finished.append("writeback")
        return {}

    monkeypatch.setitem(jobs.JOBS, "writeback", long_job)
    agent.scheduler.trigger("writeback")
    assert entered.wait(30)
    assert agent.server is not None
    base = f"http://127.0.0.1:{agent.server.port}"
    body = {
        "response_id": "w1",
        "email": "p0@acct1.example",
        "score": 2,
        "submitted_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    }
    try:
        assert post_signed(base, body, WEBHOOK_SECRET)[0] == 200
        wait_for(lambda: _posted(slack, _alert("w1")) == 1, 30)
        assert finished == []  # decided and posted while the job still held the scheduler
        assert not release.is_set()
    finally:
        release.set()
    # the cycle's full evaluation decides the same answer again: nothing twice
    before = agent.scheduler.last.get("alerts")
    agent.scheduler.trigger("alerts")
    wait_for(lambda: agent.scheduler.last.get("alerts") is not before, 60)
    result = agent.scheduler.last["alerts"]
    assert result.ok, result.error
    wait_for(lambda: agent.runtime.pipeline.repo.pending_count() == 0, 30)
    assert _rows(agent, _alert("w1")) == 1
    assert _posted(slack, _alert("w1")) == 1
    assert agent.answers.rounds >= 1


def _led(tmp_path: Path) -> AgentProcess:
    """An agent after one cycle (the figures computed and published), leading again."""
    agent = build_agent(agent_settings(tmp_path, responses=False), RecordingNotifier())
    agent.run_once()
    assert agent.lease.try_lead()  # the pass ended its lease: lead again, as the service does
    return agent


def _close(agent: AgentProcess) -> None:
    agent.store.close()
    agent.leadership.release()


def test_a_serving_agent_hands_the_interpreter_over_sooner_than_python_does(
    serving: AgentProcess,
) -> None:
    """A thread waiting for the GIL (the webhook's, the answers worker's, between their
    database and socket calls) gets it after ``SWITCH_SECONDS``, not Python's default
    5 ms, while a cycle computes on the scheduler's thread."""
    assert serving.health.role == "leader"
    assert sys.getswitchinterval() <= 0.001
    assert sys.getswitchinterval() == pytest.approx(process.SWITCH_SECONDS)


def test_the_worker_decides_from_its_own_accounts_without_a_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _led(tmp_path)
    refreshes: list[int] = []
    original = Figures.refresh

    def counting(self: Figures, as_of: datetime) -> Any:
        refreshes.append(1)
        return original(self, as_of)

    monkeypatch.setattr(Figures, "refresh", counting)
    worker = AnswersWorker(agent.runtime, lambda: True)
    woken: list[int] = []
    agent.runtime.answered = lambda: woken.append(1)
    try:
        _store(agent, _answer("d1", 2))
        assert woken == [1]
        report = worker.round()
        assert report is not None
        assert report.recorded >= 1
        assert _rows(agent, _alert("d1")) == 1
        assert refreshes == []  # the portfolio was not recomputed for it
        assert agent.runtime.take_answers() == []  # taken: the alerts job leaves them
    finally:
        _close(agent)


def test_a_worker_that_no_longer_leads_decides_nothing(tmp_path: Path) -> None:
    agent = _led(tmp_path)
    asked = threading.Semaphore(0)

    def leading() -> bool:
        asked.release()
        return False

    worker = AnswersWorker(agent.runtime, leading)
    agent.runtime.answered = worker.wake
    worker.start()
    try:
        _store(agent, _answer("s1", 3))
        assert asked.acquire(timeout=30)  # woken, and asked whether it leads
    finally:
        worker.stop()
        assert worker.join(30)
    try:
        assert worker.rounds == 0
        assert _rows(agent, _alert("s1")) == 0
        assert [a.response_id for a in agent.runtime.take_answers()] == ["s1"]  # left noted
    finally:
        _close(agent)


def test_a_fenced_claim_decides_nothing(tmp_path: Path) -> None:
    agent = _led(tmp_path)

    def superseded(what: str) -> None:
        raise FencedError(f"epoch superseded: {what} is not made")

    worker = AnswersWorker(agent.runtime, lambda: True, superseded)
    agent.runtime.answered = lambda: None
    try:
        _store(agent, _answer("f1", 3))
        assert worker.round() is None
        assert _rows(agent, _alert("f1")) == 0
    finally:
        _close(agent)


def test_before_the_first_computation_the_alerts_job_decides(tmp_path: Path) -> None:
    agent = build_agent(agent_settings(tmp_path, responses=False), RecordingNotifier())
    triggered: list[str] = []
    agent.runtime.trigger = triggered.append
    agent.runtime.answered = lambda: None
    try:
        _store(agent, _answer("b1", 1))
        assert AnswersWorker(agent.runtime, lambda: True).round() is None
        assert triggered == ["alerts"]
    finally:
        _close(agent)


def test_answers_a_dead_process_never_decided_are_decided_by_the_next_cycle(
    tmp_path: Path,
) -> None:
    agent = _led(tmp_path)
    agent.runtime.answered = lambda: None  # the worker never runs: the process dies
    _store(agent, _answer("lost-1", 4))
    _close(agent)
    again = build_agent(agent_settings(tmp_path, responses=False, keep_folder=True))
    try:
        again.run_once()
        assert _rows(again, _alert("lost-1")) == 1
    finally:
        _close(again)


def test_the_answers_path_reads_the_published_figures_while_a_refresh_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh in progress on the scheduler's thread holds the computation's lock; the
    answers path neither waits for it nor sees its half-done work, and the figures it
    reads are the same after the refresh published new ones."""
    agent = _led(tmp_path)
    figures = agent.runtime.figures
    assert figures is not None
    first = agent.runtime.computed()
    published = figures._published
    assert published is not None
    seen = (published.figures.document(), published.figures.matches())
    entered, release = threading.Event(), threading.Event()
    original = Figures.refresh

    def slow(self: Figures, as_of: datetime) -> Any:
        entered.set()
        release.wait(60)
        return original(self, as_of)

    monkeypatch.setattr(Figures, "refresh", slow)
    _store(agent, _answer("x1", 2))  # taken by the refresh below
    refreshing = threading.Thread(target=agent.runtime.computed)
    refreshing.start()
    try:
        assert entered.wait(30)
        x2 = _answer("x2", 2, person=1)
        _store(agent, x2)  # arrives during the refresh
        answered: list[Any] = []
        reader = threading.Thread(
            target=lambda: answered.append(figures.answers([x2], datetime.now(UTC)))
        )
        reader.start()
        reader.join(30)
        assert not reader.is_alive()  # did not wait for the refresh's lock
        document, metrics, matches = answered[0]
        assert document is first.document  # the last computation's document
        assert [m.response.response_id for m in matches] == ["x2"]
        assert metrics["A2"].detractors == 2  # x1 and x2 (two people), in the answers' layer
    finally:
        release.set()
        refreshing.join(60)
    try:
        assert figures._published is not published  # the refresh published new figures
        assert (published.figures.document(), published.figures.matches()) == seen
        after = figures.answers([x2], datetime.now(UTC))
        assert after is not None
        assert after[0] is not first.document
    finally:
        _close(agent)

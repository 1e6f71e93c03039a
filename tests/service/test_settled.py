"""A cycle that would change nothing skips its computing jobs; any change runs them again.

Real cycles on a plain-file CRM and a real state database (SQLite file, PostgreSQL):
the second of two quiet cycles skips every computing job with no write and no alert;
each kind of change (a CRM record, a new answer, a closed loop, a rule file, the
configuration, the clock passing the horizon, a realert falling due) makes the cycle
run again and give what a full run gives.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.core.models import Response
from agent.service.process import AgentProcess
from agent.state.leader import leadership_for
from agent.state.store import StateStore
from agent.sync.cycle import compute_from_state
from agent.sync.settled import SKIPPABLE
from tests.service.agentkit import RULES, RecordingNotifier, agent_settings

NOW = datetime.now(UTC).replace(microsecond=0)

#: Rules that do not read the clock: their decisions hold until a realert falls due.
_STILL_RULES = """\
rules:
  - id: no-feedback
    description: Account without feedback
    scope: account
    when: account.respondents == 0
    severity: info
    notify: {channel: cx-alerts}
    message: "{account.name} has no feedback"
    realert: 2h
"""


def _agent(tmp_path: Path, url: str, at: datetime, **changes: Any) -> AgentProcess:
    settings = agent_settings(tmp_path, state_url=url, keep_folder=True, **changes)
    leadership = leadership_for(settings.state_url)
    leadership.acquire(wait=False)
    store = StateStore.open(settings.state_url)
    return AgentProcess(settings, store, leadership, notifier=RecordingNotifier(), as_of=at)


@pytest.fixture
def agents(tmp_path: Path, state_url: str) -> Iterator[list[AgentProcess]]:
    made: list[AgentProcess] = []
    yield made
    for agent in made:
        agent.store.close()
        agent.leadership.release()


def _start(
    agents: list[AgentProcess], tmp_path: Path, url: str, at: datetime = NOW, **changes: Any
) -> AgentProcess:
    if agents:  # one agent at a time on the state (a new process, as after a restart)
        old = agents.pop()
        old.store.close()
        old.leadership.release()
    agents.append(_agent(tmp_path, url, at, **changes))
    return agents[-1]


def _cycle(agent: AgentProcess, at: datetime | None = None) -> dict[str, dict[str, int]]:
    if at is not None:
        agent.runtime.clock = at
    results = agent.run_once()
    assert all(r.ok for r in results), [(r.job, r.error) for r in results]
    return {r.job: dict(r.counts) for r in results}


def _skipped(counts: dict[str, dict[str, int]]) -> set[str]:
    return {job for job, c in counts.items() if c.get("unchanged")}


def _settle(agent: AgentProcess, at: datetime = NOW) -> None:
    """Cycles until one is skipped: a cycle that changed nothing settled before it (alerts
    delivered in the background after a cycle move the inputs: one more cycle then)."""
    for _ in range(6):
        if _skipped(_cycle(agent, at)) == set(SKIPPABLE):
            return
    raise AssertionError("no cycle settled")


def _assert_full_result(agent: AgentProcess, at: datetime) -> None:
    """The cycle's document is the one a full computation over the state gives."""
    full = compute_from_state(agent.store, "files", at, agent.settings.metrics)
    assert agent.runtime.computed().document.portfolio == full.document.portfolio
    assert agent.runtime.computed().document.accounts == full.document.accounts


def test_a_quiet_cycle_skips_every_computing_job_with_no_write_and_no_alert(
    agents: list[AgentProcess], tmp_path: Path, state_url: str
) -> None:
    agent = _start(agents, tmp_path, state_url)
    _settle(agent)
    version = agent.store.input_version()
    notifier = agent.runtime.notifier
    assert isinstance(notifier, RecordingNotifier)
    sent = len(notifier.sent)
    # a new process, as `run --once` is: it computes nothing
    agent = _start(agents, tmp_path, state_url)
    counts = _cycle(agent)
    assert _skipped(counts) == set(SKIPPABLE)
    assert agent.store.input_version() == version  # 0 writes to any input
    assert agent.runtime.figures is not None
    assert agent.runtime.figures._figures is None
    assert not counts["outbox"].get("alerts_sent")
    assert isinstance(agent.runtime.notifier, RecordingNotifier)
    assert agent.runtime.notifier.sent == []
    assert sent > 0
    logged = {c.job: c.counts for c in agent.store.recent_cycles(limit=8)}
    assert all(logged[job] == {"unchanged": 1} or job == "writeback" for job in SKIPPABLE)
    assert logged["writeback"]["unchanged"] == 1


def test_full_always_runs_the_whole_cycle(
    agents: list[AgentProcess], tmp_path: Path, state_url: str
) -> None:
    agent = _start(agents, tmp_path, state_url)
    _settle(agent)
    agent.runtime.full_compute = True
    assert _skipped(_cycle(agent)) == set()


def test_a_crm_record_edit_runs_the_cycle_again(
    agents: list[AgentProcess], tmp_path: Path, state_url: str
) -> None:
    agent = _start(agents, tmp_path, state_url)
    _settle(agent)
    accounts = tmp_path / "crm" / "accounts.csv"
    accounts.write_text(accounts.read_text().replace("Account 2", "Account Two"))
    counts = _cycle(agent)
    assert _skipped(counts) == set()
    _assert_full_result(agent, NOW)
    assert any(a.name == "Account Two" for a in agent.runtime.computed().document.accounts)


def test_a_new_answer_runs_the_cycle_again(
    agents: list[AgentProcess], tmp_path: Path, state_url: str
) -> None:
    agent = _start(agents, tmp_path, state_url)
    _settle(agent)
    answer = Response("hook-1", "p1@acct2.example", 2, NOW - timedelta(hours=1), source="hook")
    with agent.store.transaction() as tx:
        tx.add_responses([answer])
    agent = _start(agents, tmp_path, state_url)
    counts = _cycle(agent)
    assert _skipped(counts) == set()
    assert counts["alerts"]["alerts_recorded"] >= 1  # the new detractor
    _assert_full_result(agent, NOW)


def test_a_closed_loop_runs_the_cycle_again(
    agents: list[AgentProcess], tmp_path: Path, state_url: str
) -> None:
    agent = _start(agents, tmp_path, state_url)
    _settle(agent)
    repo = agent.runtime.pipeline.repo
    alerted = [s for s in repo.states(["executive-detractor"]).values() if s.last_alert_id]
    assert alerted
    repo.close(alerted[0].last_alert_id or "", "someone", NOW)
    assert _skipped(_cycle(agent)) == set()


def test_a_rule_file_edit_and_a_config_edit_run_the_cycle_again(
    agents: list[AgentProcess], tmp_path: Path, state_url: str
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    agent = _start(agents, tmp_path, state_url, rules_dir=rules)
    _settle(agent)
    (rules / "accounts.yaml").write_text(
        (rules / "accounts.yaml").read_text().replace("realert: 30d", "realert: 31d")
    )
    assert _skipped(_cycle(agent)) == set()
    _settle(agent)
    agent = _start(agents, tmp_path, state_url, rules_dir=rules)
    assert _skipped(_cycle(agent)) == set(SKIPPABLE)
    agent = _start(agents, tmp_path, state_url, rules_dir=rules, metrics={"loop_sla_hours": 24})
    assert _skipped(_cycle(agent)) == set()
    _assert_full_result(agent, NOW)


def test_the_clock_passing_the_horizon_runs_the_cycle_again(
    agents: list[AgentProcess], tmp_path: Path, state_url: str
) -> None:
    agent = _start(agents, tmp_path, state_url)
    _settle(agent)
    settled = agent.store.settled("files")
    assert settled is not None
    assert settled.horizon is not None
    later = settled.horizon
    assert _skipped(_cycle(agent, later)) == set()
    _assert_full_result(agent, later)
    assert _skipped(_cycle(agent, NOW - timedelta(seconds=1))) == set()  # a replay before


def test_a_realert_falling_due_runs_the_cycle_again(
    agents: list[AgentProcess], tmp_path: Path, state_url: str
) -> None:
    rules = tmp_path / "still-rules"
    rules.mkdir()
    (rules / "still.yaml").write_text(_STILL_RULES)
    agent = _start(agents, tmp_path, state_url, rules_dir=rules)
    _settle(agent)
    # the first cycle after the first history point compares with it: it settles again
    _settle(agent, NOW + timedelta(minutes=10))
    settled = agent.store.settled("files")
    assert settled is not None
    assert settled.horizon is not None
    # the answers are ten days old: the recency score holds for 80 more days; the
    # realert (2 h) comes first
    assert settled.horizon == NOW + timedelta(hours=2)
    inside = _cycle(agent, NOW + timedelta(hours=1))
    assert _skipped(inside) == set(SKIPPABLE)
    due = _cycle(agent, NOW + timedelta(hours=2))
    assert _skipped(due) == set()
    assert due["alerts"]["alerts_recorded"] >= 1


def test_a_crash_after_a_change_converges_to_the_full_result(
    agents: list[AgentProcess],
    tmp_path: Path,
    state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = _start(agents, tmp_path, state_url)
    _settle(agent)
    answer = Response("hook-2", "p1@acct4.example", 0, NOW - timedelta(hours=2), source="hook")
    with agent.store.transaction() as tx:
        tx.add_responses([answer])
    agent = _start(agents, tmp_path, state_url)

    def crash(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("killed mid-cycle")

    monkeypatch.setattr(type(agent.runtime.pipeline), "run", crash)
    results = agent.run_once()
    assert not next(r for r in results if r.job == "alerts").ok
    monkeypatch.undo()
    agent = _start(agents, tmp_path, state_url)  # the restart
    counts = _cycle(agent)
    assert _skipped(counts) == set()
    assert counts["alerts"]["alerts_recorded"] >= 1  # the answer's alert is not lost
    _assert_full_result(agent, NOW)
    _settle(agent)  # and it settles again
    assert _skipped(_cycle(agent)) == set(SKIPPABLE)


def test_a_failure_to_record_the_settled_state_costs_one_full_cycle(
    agents: list[AgentProcess],
    tmp_path: Path,
    state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = _start(agents, tmp_path, state_url)
    _settle(agent)
    agent.store.set_settled("files", None)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(StateStore, "set_settled", refuse)
    assert _skipped(_cycle(agent)) == set()  # logged, not failed
    monkeypatch.undo()
    assert _skipped(_cycle(agent)) == set()
    assert _skipped(_cycle(agent)) == set(SKIPPABLE)

"""A cycle that would change nothing skips its computing jobs; any change runs them again.

Real cycles on a plain-file CRM and a real state database (SQLite file, PostgreSQL):
the second of two quiet cycles skips every computing job with no write and no alert;
each kind of change (a CRM record, a new answer, a closed loop, a rule file, the
configuration, the clock passing the horizon, a realert falling due) makes the cycle
run again and give what a full run gives.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.cli.demo_sample import DEMO_AS_OF, write_demo_folder
from agent.core.contract import ObjectKind
from agent.core.models import Response
from agent.core.ports import FieldUpdate, WriteOutcome
from agent.service.jobs import JOBS
from agent.service.process import AgentProcess
from agent.service.runtime import Runtime
from agent.sources.files import FilesCrm
from agent.state.leader import leadership_for
from agent.state.store import StateStore
from agent.sync.cycle import compute_from_state
from agent.sync.settled import SKIPPABLE
from connectors.common.errors import FatalError
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


# -- a cycle settles after its own writes --------------------------------------------

#: Everything a cycle can write: the shipped rules with their tasks, the history and
#: the coverage plan written back to the CRM.
_WRITING = {"history": {"write_back": True}, "plan": {"write_back": True}}


def _demo(tmp_path: Path) -> datetime:
    """The demo portfolio as the CRM folder; returns its instant."""
    write_demo_folder(tmp_path / "crm")
    return DEMO_AS_OF


def _outputs(tmp_path: Path) -> dict[str, str]:
    """The files the agent writes into the CRM folder (figures and tasks)."""
    return {p.name: p.read_text() for p in (tmp_path / "crm").glob("ax_*.csv")}


@pytest.mark.parametrize("portfolio", ["service", "demo"])
def test_a_cycle_settles_after_its_own_writes_and_a_full_rerun_changes_nothing(
    agents: list[AgentProcess], tmp_path: Path, state_url: str, portfolio: str
) -> None:
    at = _demo(tmp_path) if portfolio == "demo" else NOW
    agent = _start(agents, tmp_path, state_url, at, **_WRITING)
    first = _cycle(agent)
    assert first["writeback"]["written"] > 0
    assert first["alerts"]["alerts_recorded"] > 0
    assert first["tasks"]["tasks_created"] > 0
    assert "planned_accounts" in first["coverage_plan"]
    assert agent.store.settled("files") is not None  # settled at its end, after its writes
    version, outputs = agent.store.input_version(), _outputs(tmp_path)
    # the next cycle (a new process, as `run --once` is) skips at once
    agent = _start(agents, tmp_path, state_url, at, **_WRITING)
    quiet = _cycle(agent)
    assert _skipped(quiet) == set(SKIPPABLE)
    assert quiet["crm_sync"]["accounts_changed"] == quiet["crm_sync"]["contacts_changed"] == 0
    assert agent.store.input_version() == version
    # the decisive check: the whole cycle again at the same instant acts on nothing
    agent.store.set_settled("files", None)
    agent = _start(agents, tmp_path, state_url, at, **_WRITING)
    again = _cycle(agent)
    assert _skipped(again) == set()
    assert again["writeback"]["written"] == again["writeback"]["planned_records"] == 0
    assert again["alerts"]["alerts_recorded"] == again["escalation"]["alerts_recorded"] == 0
    assert again["tasks"]["tasks_created"] == again["tasks"]["tasks_recorded"] == 0
    assert isinstance(agent.runtime.notifier, RecordingNotifier)
    assert agent.runtime.notifier.sent == []
    assert agent.store.input_version() == version  # no input written at all
    assert _outputs(tmp_path) == outputs
    assert agent.store.settled("files") is not None


def _refuse_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    real = FilesCrm.write

    def write(self: FilesCrm, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> Any:
        outcomes = real(self, obj, updates)
        refused = WriteOutcome(updates[0].record_id, ok=False, message="refused")
        return [refused, *outcomes[1:]]

    monkeypatch.setattr(FilesCrm, "write", write)


def _refuse_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    def send(self: RecordingNotifier, alert: object, channel_id: str) -> Any:
        raise FatalError("slack", "channel_not_found")

    monkeypatch.setattr(RecordingNotifier, "send", send)


@pytest.mark.parametrize(
    "case",
    [
        (_refuse_one_write, {}),
        (_refuse_alerts, {}),
        (None, {"schedule": {"coverage_plan": {"cron": "0 * * * *"}}}),  # a plan every run
    ],
    ids=["write-refused", "alert-refused", "plan-every-run"],
)
def test_a_cycle_whose_rerun_would_act_again_does_not_settle(
    agents: list[AgentProcess],
    tmp_path: Path,
    state_url: str,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[Any, dict[str, Any]],
) -> None:
    setup, changes = case
    if setup is not None:
        setup(monkeypatch)
    agent = _start(agents, tmp_path, state_url, **changes)
    _cycle(agent)
    assert agent.store.settled("files") is None


def test_a_cycle_does_not_settle_over_another_writers_input(
    agents: list[AgentProcess],
    tmp_path: Path,
    state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer stored during the cycle by another thread (a webhook) is no write of
    the cycle's own: the cycle does not settle, and the next one decides the answer."""
    agent = _start(agents, tmp_path, state_url)
    answer = Response("hook-3", "p1@acct3.example", 1, NOW - timedelta(hours=1), source="hook")
    real = JOBS["escalation"]

    def escalation(rt: Runtime) -> dict[str, int]:
        def store() -> None:
            with rt.store.transaction() as tx:
                tx.add_responses([answer])

        thread = threading.Thread(target=store)
        thread.start()
        thread.join()
        return real(rt)

    monkeypatch.setitem(JOBS, "escalation", escalation)
    _cycle(agent)
    assert agent.store.settled("files") is None
    monkeypatch.undo()
    agent = _start(agents, tmp_path, state_url)  # `run --once` again
    counts = _cycle(agent)
    assert _skipped(counts) == set()
    assert counts["alerts"]["alerts_recorded"] >= 1  # the answer's alert
    assert agent.store.settled("files") is not None

"""Between cycles the long-running agent runs its alerts job every minute over the
same figures; a run over the very inputs of the last one that wrote nothing is skipped.

Real agent, plain-file CRM, real state database (SQLite file, PostgreSQL). Each input
a decision reads makes the next run evaluate again: a silence (the state's input
version), a rule file, a new answer (a new computation); and a run that recorded an
alert is followed by one that evaluates (it finds nothing new) before runs are skipped.
"""

from __future__ import annotations

import gc
import shutil
import threading
import weakref
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.alerts import pipeline as pipeline_module
from agent.core.incremental import Figures
from agent.core.models import Response
from agent.core.ports import FieldUpdate
from agent.rules.evaluate import Evaluation, evaluate
from agent.service.jobs import JOBS
from agent.service.process import AgentProcess
from agent.service.runtime import Runtime
from agent.state.history import record_history
from tests.service.agentkit import RULES, agent_settings, leading_agent

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def agent(tmp_path: Path, state_url: str) -> Iterator[AgentProcess]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    settings = agent_settings(tmp_path, state_url=state_url, rules_dir=rules)
    with leading_agent(settings, NOW) as made:
        yield made


def _run(rt: Runtime, job: str = "alerts") -> dict[str, int]:
    """One run of ``job`` between cycles, as the scheduler starts it."""
    return JOBS[job](rt)


def _settled_runs(rt: Runtime, job: str = "alerts") -> None:
    """Runs until one is skipped (a run that recorded or delivered is not remembered)."""
    for _ in range(4):
        if _run(rt, job).get("unchanged"):
            return
    raise AssertionError(f"{job} never found its last inputs again")


def test_a_run_over_the_last_runs_inputs_is_skipped(agent: AgentProcess) -> None:
    rt = agent.runtime
    first = _run(rt)
    assert first["rules"] > 0
    assert first["alerts_recorded"] == 0
    version = rt.store.input_version()
    assert _run(rt) == {"unchanged": 1}
    assert _run(rt) == {"unchanged": 1}
    assert rt.store.input_version() == version
    _run(rt, "escalation")
    assert _run(rt, "escalation") == {"unchanged": 1}


def test_a_silence_makes_the_next_run_evaluate(agent: AgentProcess) -> None:
    rt = agent.runtime
    _settled_runs(rt)
    _silence(rt)
    assert "rules" in _run(rt)  # the silence is an input of every decision
    assert _run(rt) == {"unchanged": 1}


def test_a_loop_closed_between_runs_makes_the_next_run_evaluate(agent: AgentProcess) -> None:
    """An alert's state is an input of every decision (compared as a digest of them all):
    a loop closed from Slack between two runs makes the next one evaluate."""
    rt = agent.runtime
    _settled_runs(rt)
    repo = rt.pipeline.repo
    states = repo.states(r.id for r in rt.pipeline.registry.current.rules)
    alerted = next(s for s in states.values() if s.last_alert_id and s.closed_at is None)
    assert repo.close(alerted.last_alert_id or "", "<@U1>", NOW) is not None
    assert "rules" in _run(rt)
    assert _run(rt) == {"unchanged": 1}


def test_a_write_no_decision_reads_keeps_the_skip_and_a_history_point_does_not(
    agent: AgentProcess,
) -> None:
    rt = agent.runtime
    _settled_runs(rt)
    version = rt.store.input_version()
    update = FieldUpdate("A1", {"ax_health_score": 1.0})
    with rt.store.transaction() as tx:  # what the write-back records after a CRM write
        tx.record_written("files", "account", [update])
    assert rt.store.input_version() != version
    assert _run(rt) == {"unchanged": 1}
    computed = rt.computed()
    later = replace(computed.document, as_of=NOW + timedelta(seconds=1))
    record_history(rt.store, "files", later, rt.settings.history)
    assert "rules" in _run(rt)  # the change rules read the history
    assert _run(rt) == {"unchanged": 1}


def test_a_rule_file_edit_makes_the_next_run_evaluate(agent: AgentProcess) -> None:
    rt = agent.runtime
    _settled_runs(rt)
    path = Path(rt.settings.rules_dir) / "accounts.yaml"
    path.write_text(path.read_text().replace("realert: 30d", "realert: 31d"))
    assert "rules" in _run(rt)
    assert _run(rt) == {"unchanged": 1}


def test_a_new_answer_is_decided_and_a_recording_run_is_not_remembered(
    agent: AgentProcess,
) -> None:
    rt = agent.runtime
    _settled_runs(rt)
    answer = Response("hook-9", "p1@acct3.example", 1, NOW - timedelta(hours=1), source="hook")
    with rt.store.transaction() as tx:
        added = tx.add_responses([answer]).added
    rt.responses_added(added)  # as the webhook tells the agent: a new computation
    recorded = _run(rt)
    assert recorded["alerts_recorded"] >= 1
    again = _run(rt)  # it wrote: the next run evaluates, and finds nothing new
    assert "rules" in again
    assert again["alerts_recorded"] == 0
    assert _run(rt) == {"unchanged": 1}


def test_a_new_computation_is_built_once_the_last_one_is_let_go(
    agent: AgentProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What remembers the last computation (the jobs that ran over it, the rule facts
    built from it, the figures' own cache) lets it go before the next one's matches
    are built: the running agent holds one computation's million matches, not two."""
    rt = agent.runtime
    _settled_runs(rt)
    _settled_runs(rt, "escalation")
    last = weakref.ref(rt.computed())
    assert rt.response_facts(last()) is not None  # type: ignore[arg-type]
    alive_while_building: list[bool] = []
    real = Figures.matches

    def matches(figures: Figures, *args: Any) -> Any:
        gc.collect()
        alive_while_building.append(last() is not None)
        return real(figures, *args)

    monkeypatch.setattr(Figures, "matches", matches)
    answer = Response("hook-8", "p1@acct3.example", 2, NOW - timedelta(hours=1), source="hook")
    with rt.store.transaction() as tx:
        added = tx.add_responses([answer]).added
    rt.responses_added(added)
    assert _run(rt)["alerts_recorded"] >= 1  # the new computation decided
    assert alive_while_building == [False]


class _Matches(list[Any]):
    """A computation's matches, in a list a weak reference can follow."""


def test_a_run_that_decided_keeps_none_of_its_computations_answers(
    agent: AgentProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that recorded alerts holds its decisions, and each decision's match holds
    the evaluation's history and every matched answer of its computation. What the
    agent keeps of the run (its report's counts) holds none of them: the next
    computation's matches are built once the last one's are gone."""
    rt = agent.runtime
    built: list[weakref.ref[_Matches]] = []
    alive_while_building: list[list[bool]] = []
    real = Figures.matches

    def matches(figures: Figures, *args: Any) -> Any:
        gc.collect()
        alive_while_building.append([ref() is not None for ref in built])
        out = _Matches(real(figures, *args))
        built.append(weakref.ref(out))
        return out

    monkeypatch.setattr(Figures, "matches", matches)
    for n in (7, 6):  # each newer than the last: counted, and alerted
        at = NOW - timedelta(hours=n)
        answer = Response(f"hook-{n}", "p1@acct3.example", 1, at, source="hook")
        with rt.store.transaction() as tx:
            added = tx.add_responses([answer]).added
        rt.responses_added(added)
        assert _run(rt)["alerts_recorded"] >= 1  # decided: its report held decisions
    assert rt.last_alerts is not None
    assert rt.last_alerts.recorded >= 1  # the counts stay for whoever shows them
    assert alive_while_building == [[], [False]]


def test_rules_another_thread_loads_during_a_run_are_evaluated_by_the_next(
    agent: AgentProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answers worker refreshes the rules on its own thread: an edit it loads while
    the alerts job evaluates the rules it loaded before is not what that run decided
    over, so the next run over the same figures evaluates instead of skipping."""
    rt = agent.runtime
    _settled_runs(rt)
    path = Path(rt.settings.rules_dir) / "accounts.yaml"

    def edited_and_loaded_meanwhile(*args: Any) -> Evaluation:
        path.write_text(path.read_text().replace("realert: 30d", "realert: 31d"))
        other = threading.Thread(target=rt.pipeline.registry.refresh, name="answers")
        other.start()
        other.join(10)
        return evaluate(*args)

    monkeypatch.setattr(pipeline_module, "evaluate", edited_and_loaded_meanwhile)
    _silence(rt)  # the next run evaluates (the silence is an input of every decision)
    assert _run(rt)["alerts_recorded"] == 0
    monkeypatch.setattr(pipeline_module, "evaluate", evaluate)
    assert "rules" in _run(rt)  # the edit was loaded, never evaluated by this job
    assert _run(rt) == {"unchanged": 1}


def _silence(rt: Runtime) -> None:
    rt.pipeline.repo.add_silence(
        rule_id="executive-detractor",
        account_id=None,
        reason="maintenance",
        created_by="ops@example.com",
        now=NOW,
        expires_at=NOW + timedelta(days=1),
    )

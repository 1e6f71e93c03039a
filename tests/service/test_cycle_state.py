"""One cycle, one computation: every entry runs the same cycle; changes recompute in parts."""

from __future__ import annotations

import gc
import json
import shutil
import weakref
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.core.contract import MetricsConfig
from agent.core.incremental import Figures
from agent.core.models import Account, Contact, Response
from agent.rules.history import Answers
from agent.service.answers import AnswersWorker
from agent.service.cycle import run_cycle
from agent.service.process import AgentProcess
from agent.service.runner import run_job
from agent.state.leader import leadership_for
from agent.state.store import StateStore
from agent.sync.cycle import compute_from_state
from agent.sync.figures import CycleFigures, _Freezer
from tests.service.agentkit import RULES, RecordingNotifier, agent_settings, build_agent


def _agent(
    tmp_path: Path, as_of: datetime | None = None, *, keep_folder: bool = False
) -> AgentProcess:
    settings = agent_settings(tmp_path, keep_folder=keep_folder)
    leadership = leadership_for(settings.state_url)
    leadership.acquire(wait=False)
    store = StateStore.open(settings.state_url)
    return AgentProcess(settings, store, leadership, notifier=RecordingNotifier(), as_of=as_of)


def _close(agent: AgentProcess) -> None:
    agent.store.close()
    agent.leadership.release()


def _full(agent: AgentProcess, as_of: datetime) -> object:
    """The full computation's document, with the agent's task section as of ``as_of``."""
    document = compute_from_state(agent.store, "files", as_of, MetricsConfig()).document
    tasks = agent.runtime.tasks
    return replace(document, tasks=tasks.figures(as_of) if tasks is not None else None)


def _stored(agent: AgentProcess, response_id: str, score: int, source: str) -> Response:
    """After a first cycle, one answer for A2 stored as a source would store it."""
    when = agent.runtime.now()
    agent.run_once()
    answer = Response(
        response_id, "p0@acct2.example", score, when - timedelta(hours=1), source=source
    )
    with agent.store.transaction() as tx:
        tx.add_responses([answer])
    return answer


def test_the_jobs_of_a_cycle_share_one_computation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[int] = []
    seen: dict[str, int] = {}
    original_load = Figures.load
    original_computed = CycleFigures.computed

    def counting_load(self: Figures, *args: object, **kwargs: bool) -> None:
        loads.append(1)
        original_load(self, *args, **kwargs)  # type: ignore[arg-type]

    def remembering(self: CycleFigures, *args: object, **kwargs: object) -> object:
        value = original_computed(self, *args, **kwargs)  # type: ignore[arg-type]
        # The figures' identity: the tasks job's new tasks renew only the document's
        # task section, around the very same computed figures.
        seen[f"call{len(seen)}"] = id(value.matches)  # type: ignore[attr-defined]
        return value

    monkeypatch.setattr(Figures, "load", counting_load)
    monkeypatch.setattr(CycleFigures, "computed", remembering)
    agent = build_agent(agent_settings(tmp_path))
    try:
        results = agent.run_once()
    finally:
        _close(agent)
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(loads) == 1  # every job of the cycle reads one computation
    assert len(seen) >= 3  # coverage plan, write-back, alerts, escalation
    assert len(set(seen.values())) == 1  # the very same figures, not a recomputation


def test_run_once_as_of_replays_the_cycle_at_that_instant(tmp_path: Path) -> None:
    when = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)  # every answer is out of the window
    agent = _agent(tmp_path, as_of=when)
    try:
        results = agent.run_once()
        computed = agent.runtime.computed()
    finally:
        _close(agent)
    assert all(r.ok for r in results), [r.error for r in results]
    assert computed.document.as_of == when
    assert all(a.respondents == 0 for a in computed.document.accounts)


def test_a_process_that_runs_once_computes_in_one_pass_as_the_parts_would(
    tmp_path: Path,
) -> None:
    """``run --once`` exits after its cycle: its figures come from one pass, with no
    per-account parts, and equal what the running agent's parts give."""
    when = datetime.now(UTC)
    once = _agent(tmp_path / "once", as_of=when)
    # the very same CRM folder (its answers are dated from the clock as it is written)
    shutil.copytree(tmp_path / "once" / "crm", tmp_path / "kept" / "crm")
    kept = _agent(tmp_path / "kept", as_of=when, keep_folder=True)
    try:
        once.runtime.runs_once()
        for agent in (once, kept):
            results = agent.run_once()
            assert all(r.ok for r in results), [r.error for r in results]
        one_pass, parts = once.runtime.computed(), kept.runtime.computed()
        held = once.runtime.figures
        assert held is not None
        assert held._figures is None  # no parts built
        assert kept.runtime.figures is not None
        assert kept.runtime.figures._figures is not None
        assert one_pass.document == parts.document
        assert one_pass.matches == parts.matches
        assert one_pass.accounts == parts.accounts
        assert once.runtime.computed() is one_pass  # the jobs share the one computation
        # a change computes the whole portfolio again, in one pass
        answer = Response("hook-1", "p0@acct2.example", 1, when - timedelta(hours=1), "hook")
        with once.store.transaction() as tx:
            tx.add_responses([answer])
        once.runtime.responses_added([answer])
        again = once.runtime.computed()
        assert again is not one_pass
        assert held._figures is None
        assert again.document == _full(once, when)
        assert again.document != one_pass.document
    finally:
        _close(once)
        _close(kept)


def test_run_once_on_the_command_line_computes_in_one_pass(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    config = tmp_path / "ax-agent.yaml"
    config.write_text(
        f"crm: files\nfiles:\n  path: {json.dumps(str(settings.files.path))}\n"
        f"state_url: {json.dumps(settings.state_url)}\nrules_dir: {json.dumps(str(RULES))}\n"
        "log:\n  format: json\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line)["event"] for line in result.output.splitlines() if line[:1] == "{"]
    assert "figures_computed_once" in events
    assert "figures_refreshed" not in events


def test_run_as_of_needs_once_and_an_instant(tmp_path: Path) -> None:
    runner = CliRunner()
    without_once = runner.invoke(app, ["run", "--as-of", "2025-06-01T00:00:00Z"])
    assert without_once.exit_code == 2
    assert "--as-of needs --once" in without_once.output
    bad = runner.invoke(app, ["run", "--once", "--as-of", "yesterday"])
    assert bad.exit_code == 2
    assert "'yesterday' is not an ISO 8601 instant" in bad.output


def test_a_new_answer_recomputes_its_account_only_and_equals_the_full_result(
    tmp_path: Path,
) -> None:
    when = datetime.now(UTC)
    agent = _agent(tmp_path, as_of=when)
    try:
        answer = _stored(agent, "hook-1", 1, "hook")
        agent.runtime.responses_added([answer])
        figures = agent.runtime.figures
        assert figures is not None
        report = figures.figures(when)  # refreshed as of the same instant: one account
        assert report.account_of(answer) == "A2"
        computed = agent.runtime.computed()
        assert computed.document == _full(agent, when)
    finally:
        _close(agent)


def test_every_computation_takes_its_objects_out_of_the_collectors_reach(tmp_path: Path) -> None:
    """What a computation leaves alive is frozen (``gc.freeze``), after a full load and
    after an incremental refresh alike, so the collector's next pass does not stop the
    answers thread to scan it."""
    when = datetime.now(UTC)
    agent = _agent(tmp_path, as_of=when)
    gc.unfreeze()
    try:
        agent.run_once()
        figures = agent.runtime.figures
        assert figures is not None
        first = agent.runtime.computed().document
        assert gc.get_freeze_count() > 0
        assert not any(o is first.accounts for o in gc.get_objects())  # in no generation
        answer = Response("hook-2", "p0@acct2.example", 1, when - timedelta(hours=1), source="hook")
        with agent.store.transaction() as tx:
            tx.add_responses([answer])
        agent.runtime.responses_added([answer])
        second = agent.runtime.computed().document  # an incremental refresh: one account
        assert second is not first
        assert not any(o is second.accounts for o in gc.get_objects())
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        _close(agent)


def test_frozen_garbage_is_collected_once_the_frozen_objects_have_grown() -> None:
    """Freezing keeps the garbage cycles pending at that moment: once the frozen objects
    have grown by the freezer's factor since its last collection, one full collection
    frees them, and the live objects are frozen again."""

    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.unfreeze()
    freezer = _Freezer(growth=1.5)
    try:
        freezer.freeze()  # the first freeze sets the measure
        node = Node()  # a garbage cycle, once the name goes
        cycle = weakref.ref(node)
        del node
        freezer.freeze()  # hardly grown: frozen with it
        assert cycle() is not None
        assert freezer.collections == 0
        live = [[i] for i in range(gc.get_freeze_count())]  # twice as many tracked objects
        freezer.freeze()
        assert freezer.collections == 1
        assert cycle() is None
        assert not any(o is live for o in gc.get_objects())  # frozen again
    finally:
        gc.unfreeze()


def test_a_full_load_does_not_hold_the_noted_answers_beside_the_loaded_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers noted before the first computation are in the store too: the full load
    reads them from there, so the noted copies are let go before it (a first ingest's
    200,000 answers would otherwise sit beside the same ones loaded)."""
    when = datetime.now(UTC)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        figures = CycleFigures(store, "files", MetricsConfig())
        answers = [
            Response(f"r{i}", f"p{i}@x.example", i, when - timedelta(hours=1), source="hook")
            for i in range(3)
        ]
        store.add_responses(answers)
        figures.responses_added(answers)
        noted = figures._new  # the list the next refresh takes
        held_at_load: list[int] = []
        original = StateStore.load_responses

        def loading(self: StateStore, *args: object) -> list[Response]:
            held_at_load.append(len(noted))
            return original(self, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(StateStore, "load_responses", loading)
        computed = figures.computed(when)
        assert held_at_load == [0]
        assert len(computed.document.unmatched) == 3  # loaded from the store all the same
    finally:
        store.close()


def test_full_forces_a_full_computation_every_cycle(tmp_path: Path) -> None:
    agent = _agent(tmp_path, as_of=datetime.now(UTC))
    agent.runtime.full_compute = True
    try:
        agent.run_once()
        first = agent.runtime.computed()
        run_cycle(agent.runtime, ["writeback"])
        assert agent.runtime.computed() is not first  # computed afresh for the new cycle
    finally:
        _close(agent)


def test_an_error_inside_a_refresh_starts_over_and_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    when = datetime.now(UTC)
    agent = _agent(tmp_path, as_of=when)
    try:
        agent.run_once()
        answer = Response("hook-2", "p1@acct4.example", 0, when - timedelta(hours=2), source="hook")
        with agent.store.transaction() as tx:
            tx.add_responses([answer])
        agent.runtime.responses_added([answer])
        calls: list[int] = []
        original = Figures._recompute

        def failing_once(self: Figures, due: set[str], as_of: datetime) -> set[str]:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("killed in the middle of the refresh")
            return original(self, due, as_of)

        monkeypatch.setattr(Figures, "_recompute", failing_once)
        with pytest.raises(RuntimeError):
            agent.runtime.computed()
        assert agent.runtime.computed().document == _full(agent, when)
    finally:
        _close(agent)


def test_a_restart_after_a_crash_between_commit_and_notice_converges(tmp_path: Path) -> None:
    """Answers committed by a process that died before telling its figures are found by
    the next process, which rebuilds its parts from the state database."""
    when = datetime.now(UTC)
    agent = _agent(tmp_path, as_of=when)
    agent.run_once()
    answer = Response("lost-1", "p2@acct6.example", 2, when - timedelta(hours=3), source="hook")
    with agent.store.transaction() as tx:
        tx.add_responses([answer])  # ... and the process dies here
    _close(agent)
    again = _agent(tmp_path, as_of=when)
    try:
        again.run_once()
        document = again.runtime.computed().document
        assert document == _full(again, when)
        assert any(a.id == "A6" and a.detractors for a in document.accounts)
    finally:
        _close(again)


def test_a_detractor_between_cycles_is_decided_from_its_own_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = RecordingNotifier()
    settings = agent_settings(tmp_path)
    leadership = leadership_for(settings.state_url)
    leadership.acquire(wait=False)
    store = StateStore.open(settings.state_url)
    agent = AgentProcess(settings, store, leadership, notifier=notifier)
    try:
        agent.run_once()  # the cycle's full evaluation
        assert agent.lease.try_lead()  # the pass ended its lease: lead again, as the service does
        agent.runtime.answered = lambda: None  # the answers worker, rounds run below
        before = len(notifier.sent)
        refreshes: list[int] = []
        original = Figures.refresh

        def counting(self: Figures, as_of: datetime) -> object:
            refreshes.append(1)
            return original(self, as_of)

        monkeypatch.setattr(Figures, "refresh", counting)
        when = datetime.now(UTC) - timedelta(minutes=1)
        answer = Response("hook-3", "p0@acct2.example", 1, when, source="webhook")
        with store.transaction() as tx:
            tx.add_responses([answer])
        agent.runtime.responses_added([answer])  # what the webhook handler reports
        report = AnswersWorker(agent.runtime, lambda: True).round()
        assert report is not None
        assert report.rules > 0
        assert "executive-detractor" in [a.rule_id for a in notifier.sent[before:]]
        assert refreshes == []  # the portfolio was not recomputed for it
        # the next cycle's figures take the answer in, and equal a full computation
        assert agent.runtime.computed().document == _full(agent, agent.runtime.cycle_at)
        assert refreshes == [1]
        # and its full evaluation decides the answer again: nothing recorded twice
        result = run_job(agent.runtime, "alerts")
        assert result.ok, result.error
        assert [a.rule_id for a in notifier.sent[before:]].count("executive-detractor") == 1
    finally:
        _close(agent)


def test_answers_between_cycles_without_an_answers_worker_are_left_to_the_alerts_job(
    tmp_path: Path,
) -> None:
    """A dry run has no answers worker: nothing is noted, the alerts job decides."""
    agent = _agent(tmp_path)
    try:
        when = datetime.now(UTC) - timedelta(minutes=1)
        answer = Response("hook-4", "p0@acct4.example", 1, when, source="webhook")
        with agent.store.transaction() as tx:
            tx.add_responses([answer])
        agent.runtime.responses_added([answer])
        assert agent.runtime.take_answers() == []
    finally:
        _close(agent)


def test_stored_answers_that_could_not_be_noted_are_counted_at_the_next_computation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file drop's answers are stored before the figures are told: should telling
    them fail, the next computation reads the state in full and counts them."""
    when = datetime.now(UTC)
    agent = _agent(tmp_path, as_of=when)
    try:
        answer = _stored(agent, "drop-1", 9, "drop")
        figures = agent.runtime.figures
        assert figures is not None

        def broken(_added: object) -> None:
            raise RuntimeError("noting failed")

        monkeypatch.setattr(figures, "responses_added", broken)
        with pytest.raises(RuntimeError, match="noting failed"):
            agent.runtime.noted([answer])
        assert agent.runtime.computed().document == _full(agent, when)
    finally:
        _close(agent)


def _two_accounts(tmp_path: Path) -> StateStore:
    """A state whose mirror holds accounts A1 and A2, with one contact each."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    store.upsert_records(
        "files", "account", [Account("A1", "One", revenue=1.0), Account("A2", "Two")]
    )
    store.upsert_records(
        "files",
        "contact",
        [Contact("C1", "A1", "a@one.example"), Contact("C2", "A2", "b@two.example")],
    )
    return store


def test_records_read_again_after_a_crm_change_are_new_objects_only_where_changed(
    tmp_path: Path,
) -> None:
    """After a CRM change the mirror's records are read again; those read equal are the
    very objects held before, so a 1 % change does not hold every record twice through
    the computation that follows."""
    when = datetime.now(UTC)
    store = _two_accounts(tmp_path)
    try:
        figures = CycleFigures(store, "files", MetricsConfig())
        figures.computed(when)
        (a1, a2), (c1, c2) = figures.records()
        store.upsert_records("files", "account", [replace(a2, revenue=3.0)])
        figures.crm_changed()
        computed = figures.computed(when)
        (b1, b2), (d1, d2) = figures.records()
        assert (b1, d1, d2) == (a1, c1, c2)
        assert b1 is a1
        assert d1 is c1
        assert d2 is c2
        assert b2 is not a2
        assert b2.revenue == 3.0
        assert {m.id: m.revenue for m in computed.document.accounts} == {"A1": 1.0, "A2": 3.0}
    finally:
        store.close()


def test_a_crm_change_of_accounts_only_does_not_read_the_contacts_again(
    tmp_path: Path,
) -> None:
    """The contacts the figures hold are the mirror's still when only accounts changed:
    they are not read again (half a million at 50,000 accounts), and the figures equal
    a full computation."""
    when = datetime.now(UTC)
    store = _two_accounts(tmp_path)
    try:
        store.add_responses(
            [Response("r1", "a@one.example", 9, when - timedelta(hours=1), source="f")]
        )
        figures = CycleFigures(store, "files", MetricsConfig())
        figures.computed(when)
        accounts, contacts = figures.records()
        store.upsert_records("files", "account", [Account("A2", "Two", revenue=5.0)])
        loaded: list[str] = []
        original = StateStore.load_contacts

        def counting(self: StateStore, *args: object) -> list[Contact]:
            loaded.append("contacts")
            return original(self, *args)  # type: ignore[arg-type]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(StateStore, "load_contacts", counting)
            figures.crm_changed(["account"])
            computed = figures.computed(when)
            assert loaded == []
            assert figures.records()[1] is contacts
            assert figures.records()[0] is not accounts
            figures.crm_changed()  # not said which: both read again
            figures.computed(when + timedelta(seconds=1))
            assert loaded == ["contacts"]
        full = compute_from_state(store, "files", when, MetricsConfig()).document
        assert computed.document == full
    finally:
        store.close()


def test_a_sync_that_changed_nothing_leaves_the_figures_as_they_are(tmp_path: Path) -> None:
    agent = _agent(tmp_path, as_of=datetime.now(UTC))
    try:
        agent.run_once()
        assert agent.lease.try_lead()  # leading between cycles, as the service does
        rt = agent.runtime
        folder = Path(rt.settings.files.path)  # type: ignore[union-attr]
        accounts = folder / "accounts.csv"
        # the first read after the write-back brings the written figures into the mirror
        accounts.write_bytes(accounts.read_bytes() + b"\n")  # a blank line: read, same rows
        run_job(rt, "crm_sync")
        first = rt.computed()
        accounts.write_bytes(accounts.read_bytes() + b"\n")
        counts = run_job(rt, "crm_sync").counts
        assert counts["accounts_read"] > 0
        assert counts["accounts_changed"] == 0
        assert rt.computed() is first
        agent.lease.step_down("stopping")
    finally:
        _close(agent)


def test_the_deciding_jobs_share_one_computations_answer_facts(tmp_path: Path) -> None:
    """The alerts and escalation jobs read the same facts, whose previous answers are
    indexed once (``Answers``)."""
    agent = _agent(tmp_path, as_of=datetime.now(UTC))
    try:
        results = agent.run_once()
        assert all(r.ok for r in results), [r.error for r in results]
        computed = agent.runtime.computed()
        facts = agent.runtime.response_facts(computed)
        assert isinstance(facts, Answers)
        assert agent.runtime.response_facts(computed) is facts
        assert list(facts) == computed.matches
    finally:
        _close(agent)

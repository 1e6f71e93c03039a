"""The agent in one process: one pass of every job, serving, triggers, shutdown, refusal."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slackkit import record
from structlog.testing import capture_logs

from agent.cli.run_cmd import start
from agent.config.logging import register_secret
from agent.service.process import AgentProcess
from agent.service.runtime import Runtime
from agent.service.webhook import PATH
from agent.sources.files import written_file
from agent.state.leader import FileLeadership, leadership_for
from tests.service.agentkit import (
    WEBHOOK_SECRET,
    RecordingNotifier,
    agent_settings,
    build_agent,
    wait_for,
)
from tests.service.httpkit import call, post_signed


def test_one_pass_runs_every_job_in_order_and_logs_each(tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    agent = build_agent(agent_settings(tmp_path), notifier)
    with capture_logs() as logs:
        results = agent.run_once()
    assert [r.job for r in results] == [
        "crm_sync",
        "survey_ingest",
        "tasks",
        "coverage_plan",
        "writeback",
        "alerts",
        "escalation",
        "outbox",
    ]
    assert all(r.ok for r in results)
    cycles = {c.job: c for c in agent.store.recent_cycles(10)}
    assert {c.status for c in cycles.values()} == {"ok"}
    assert cycles["survey_ingest"].counts["responses_new"] == 9
    assert cycles["writeback"].counts["written"] > 0
    assert cycles["tasks"].counts["tasks_created"] > 0  # the detractors' callbacks
    assert written_file(tmp_path / "crm", "account").is_file()
    assert "executive-detractor" in notifier.rules()
    done = [e for e in logs if e["event"] == "job_done"]
    assert [e["job"] for e in done] == [r.job for r in results]
    assert all(isinstance(e["seconds"], float) for e in done)
    assert _free(tmp_path)  # released at the end


def test_a_failing_job_is_recorded_and_the_others_still_run(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    (tmp_path / "crm" / "accounts.csv").unlink()
    register_secret("s3cr3t-in-error")
    agent = build_agent(settings)
    results = {r.job: r for r in agent.run_once()}
    assert not results["crm_sync"].ok
    assert results["survey_ingest"].ok
    assert results["outbox"].ok
    (failed,) = agent.store.recent_cycles(1, job="crm_sync")
    assert failed.status == "failed"
    assert "accounts.csv" in (failed.error or "")


def test_run_once_exits_one_when_a_job_failed(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    assert start(settings, once=True) == 0
    (tmp_path / "crm" / "contacts.csv").unlink()
    assert start(settings, once=True) == 1


def test_a_second_agent_on_the_same_sqlite_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = agent_settings(tmp_path)
    holder = leadership_for(settings.state_url)
    holder.acquire(wait=False)
    try:
        assert start(settings) == 2
    finally:
        holder.release()
    err = capsys.readouterr().err
    assert "is in use by ax-agent pid" in err
    assert "only one agent may run on a SQLite state file" in err


def test_dry_run_plans_but_writes_and_sends_nothing(tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    agent = build_agent(agent_settings(tmp_path), notifier, dry_run=True)
    results = {r.job: r for r in agent.run_once()}
    assert results["writeback"].counts["planned_records"] > 0
    assert "written" not in results["writeback"].counts
    assert not written_file(tmp_path / "crm", "account").exists()
    assert notifier.sent == []


@contextmanager
def _serving_between_cycles(
    tmp_path: Path, notifier: RecordingNotifier
) -> Iterator[tuple[AgentProcess, str]]:
    """An agent serving after its first pass (alerts and survey ingestion hourly), its
    base URL; stopped after, with exit status 0."""
    settings = agent_settings(
        tmp_path,
        responses=False,
        schedule={"alerts": {"every": 3600}, "survey_ingest": {"every": 3600}},
    )
    agent = build_agent(settings, notifier)
    thread = threading.Thread(target=lambda: agent.serve(install_signals=False))
    thread.start()
    try:
        wait_for(lambda: agent.health.role == "leader" and "outbox" in agent.scheduler.last)
        assert agent.server is not None
        yield agent, f"http://127.0.0.1:{agent.server.port}"
    finally:
        agent.request_stop()
        thread.join(15)
    assert not thread.is_alive()
    assert agent.exit_code == 0


def _detractor() -> dict[str, object]:
    when = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return {"response_id": "w1", "email": "p0@acct1.example", "score": 2, "submitted_at": when}


def test_a_webhook_detractor_reaches_the_notifier_without_waiting(tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    with _serving_between_cycles(tmp_path, notifier) as (agent, base):
        assert call(f"{base}/readyz")[0] == 200
        assert post_signed(base, _detractor(), WEBHOOK_SECRET)[0] == 200
        wait_for(lambda: "executive-detractor" in notifier.rules(), timeout=10)
        wait_for(lambda: agent.runtime.pipeline.repo.pending_count() == 0, timeout=10)
        assert "new-detractor" not in notifier.rules()  # a task-only rule posts nothing
    assert agent.health.role == "stopping"
    assert _free(tmp_path)
    assert PATH == "/webhooks/responses"


def test_a_webhook_detractor_is_decided_though_noting_it_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noting the stored answer fails (the webhook still answers 200, and a resend would
    be a repeat): the figures are read again in full and the alerts job decides it."""

    def broken(_runtime: Runtime, _added: object) -> None:
        raise RuntimeError("noting failed")

    notifier = RecordingNotifier()
    with _serving_between_cycles(tmp_path, notifier) as (_agent, base):
        monkeypatch.setattr(Runtime, "responses_added", broken)
        with capture_logs() as logs:
            assert post_signed(base, _detractor(), WEBHOOK_SECRET)[0] == 200
            wait_for(lambda: "executive-detractor" in notifier.rules(), timeout=15)
    assert [e["event"] for e in logs].count("webhook_stored_hook_failed") == 1


def _free(tmp_path: Path) -> bool:
    """Whether no agent holds the SQLite state's lock any more."""
    lock = FileLeadership(tmp_path / "state.db")
    taken = lock.try_acquire()
    lock.release()
    return taken


def test_stopping_flushes_the_outbox_before_releasing(tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    settings = agent_settings(tmp_path, schedule={"outbox": {"every": 3600}})
    agent = build_agent(settings, notifier)
    thread = threading.Thread(target=lambda: agent.serve(install_signals=False))
    thread.start()
    try:
        repo = agent.runtime.pipeline.repo
        # the cycle's own alerts delivered: the outbox job may have been skipped while
        # the delivery worker was still sending the escalations
        wait_for(lambda: "outbox" in agent.scheduler.last and repo.pending_count() == 0)
        before = len(notifier.sent)
        now = datetime.now(UTC)
        agent.runtime.pipeline.repo.record([record("late-alert", "C0CXALERTS", now)], [])
    finally:
        agent.request_stop()
        thread.join(120)  # a loaded machine may still be finishing the cycle's last job
    assert not thread.is_alive()
    assert [a.alert_id for a in notifier.sent[before:]] == ["late-alert"]
    assert agent.runtime.pipeline.repo.pending_count() == 0


def test_runs_a_dead_leader_left_running_are_closed_as_failed(tmp_path: Path) -> None:
    agent = build_agent(agent_settings(tmp_path))
    orphan = agent.store.start_cycle("writeback")  # as if the last agent was killed here
    agent.run_once()
    (closed,) = [c for c in agent.store.recent_cycles(20) if c.id == orphan]
    assert closed.status == "failed"
    assert "the agent stopped during this run" in (closed.error or "")
    assert agent.store.recent_cycles(1, job="writeback")[0].status == "ok"


def test_a_port_in_use_stops_the_start_with_status_two(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = build_agent(agent_settings(tmp_path, server={"port": port}))
        with capture_logs() as logs:
            assert agent.serve(install_signals=False) == 2
    assert any(e["event"] == "http_cannot_listen" and e["port"] == port for e in logs)
    assert _free(tmp_path)

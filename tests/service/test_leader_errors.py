"""A database error while a replica takes the leadership is a failed attempt, not a crash:
the agent logs one line, stays a standby and leads at a later attempt.

Another replica ending this one's sessions (``pg_terminate_backend``) or the database
restarting makes the take raise; the whole agent used to stop (``agent_failed``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from structlog.testing import capture_logs

from agent.service.process import AgentProcess
from tests.service.agentkit import agent_settings, build_agent, wait_for


def _lead_through(agent: AgentProcess) -> list[MutableMapping[str, Any]]:
    """Serve until ``agent`` leads, then stop it; the logs of the whole run."""
    thread = threading.Thread(target=lambda: agent.serve(install_signals=False))
    with capture_logs() as logs:
        thread.start()
        try:
            wait_for(lambda: agent.fence.leading or agent.stop_event.is_set(), 30)
            assert agent.fence.leading, [e for e in logs if e["log_level"] == "error"]
            assert not agent.stop_event.is_set()
        finally:
            agent.request_stop()
            thread.join(30)
    assert not thread.is_alive()
    agent.store.close()
    assert agent.exit_code == 0
    assert not [e for e in logs if e["event"] == "agent_failed"]
    return logs


def _events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def test_a_failed_take_and_a_failed_leader_lookup_leave_a_standby_that_leads_next(
    tmp_path: Path, state_url: str
) -> None:
    """The take raises as on a session ended under it, and the standby's look-up of the
    leader right after fails too (the server restarting): two warnings, then it leads."""
    agent = build_agent(agent_settings(tmp_path, state_url=state_url))
    fence = agent.fence
    take, current = fence.take, fence.current
    failing = {"take": 1, "current": 0}
    ended = psycopg.OperationalError("terminating connection due to administrator command")

    def once(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if failing[name]:
                failing[name] -= 1
                if name == "take":
                    failing["current"] = 1  # the next look-up fails as well
                raise OperationalError("UPDATE leadership", None, ended)
            return real(*args, **kwargs)

        return call

    fence.take = once("take", take)  # type: ignore[method-assign]
    fence.current = once("current", current)  # type: ignore[method-assign]

    logs = _lead_through(agent)

    assert failing == {"take": 0, "current": 0}
    not_taken = _events(logs, "leadership_not_taken")
    assert len(not_taken) == 1
    assert "terminating connection" in not_taken[0]["error"]
    assert "exc_info" not in not_taken[0]
    assert len(_events(logs, "leadership_check_failed")) == 1
    assert len(_events(logs, "leadership_epoch_taken")) == 1


@pytest.mark.postgres
def test_a_take_whose_session_is_terminated_is_retried_and_leads(
    tmp_path: Path, postgres_url: str
) -> None:
    """Another replica ends the session of this one's take (``pg_terminate_backend``)
    while the take runs: the agent stands by and leads at its next attempt."""
    agent = build_agent(agent_settings(tmp_path, state_url=postgres_url))
    admin = create_engine(postgres_url, poolclass=NullPool)
    terminated: list[int] = []

    def end_the_take(_conn: Connection, cursor: Any, statement: str, *_args: Any) -> None:
        if terminated or not statement.lstrip().startswith("UPDATE leadership"):
            return
        backend = cursor.connection.info.backend_pid
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
            other.commit()
        terminated.append(int(backend))

    engine = agent.store.engine
    event.listen(engine, "before_cursor_execute", end_the_take)
    try:
        logs = _lead_through(agent)
    finally:
        event.remove(engine, "before_cursor_execute", end_the_take)
        admin.dispose()

    assert len(terminated) == 1
    assert len(_events(logs, "leadership_not_taken")) == 1
    assert len(_events(logs, "leadership_epoch_taken")) == 1


def test_run_once_names_the_database_error_when_the_take_fails(
    tmp_path: Path, state_url: str
) -> None:
    """``run --once`` whose take fails on a database error says so, in one line: not
    that another agent leads (none does)."""
    from agent.state.errors import LeadershipError

    agent = build_agent(agent_settings(tmp_path, state_url=state_url))
    ended = psycopg.OperationalError("terminating connection due to administrator command")

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("UPDATE leadership", None, ended)

    agent.fence.take = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(LeadershipError) as raised:
            agent.run_once()
    finally:
        agent.store.close()
    message = str(raised.value)
    assert message.startswith("could not take the leadership on ")
    assert message.endswith(": terminating connection due to administrator command")
    assert "leads on" not in message
    assert "\n" not in message

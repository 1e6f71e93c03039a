"""Reading task completions back is fenced by the leadership epoch, on both dialects.

A task completed in the CRM closes its loop with local writes only: the task row, the
response's ``loop_closed_at``, the alert state (no escalation), the queued in-place
message update, and the read-back cursor. A leader superseded before it reads back
commits none of them; the new leader, reading the same completion, commits them all.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from agent.state.errors import FencedError
from agent.state.leader_epoch import Fence
from agent.state.schema import alert_outbox, alert_state, crm_tasks, leadership, responses
from agent.state.store import StateStore
from agent.tasks.sync import CLOSED_BY_CRM
from tests.tasks.portfolio import AS_OF, Agent, read_tasks, write_folder, write_tasks

KEY = "new-detractor:responses.csv/R1"
SUBJECT = "responses.csv/R1"


def _complete_in_file(folder: Path) -> None:
    rows = read_tasks(folder)
    for row in rows:
        if row["alert_key"] == KEY:
            row["status"], row["completed_at"] = "completed", "2026-06-01T15:30:00Z"
    write_tasks(folder, rows)


def _local(store: StateStore) -> tuple[object, ...]:
    """What a read-back writes: task status, loop time, alert closure, updates, cursor."""
    with store.engine.connect() as conn:
        status = conn.execute(select(crm_tasks.c.status).where(crm_tasks.c.key == KEY)).scalar()
        closed_at = conn.execute(
            select(responses.c.loop_closed_at).where(responses.c.response_id == "R1")
        ).scalar()
        closed_by = conn.execute(
            select(alert_state.c.closed_by).where(alert_state.c.subject == SUBJECT)
        ).all()
        updates = conn.execute(
            select(func.count()).where(alert_outbox.c.kind == "update")
        ).scalar_one()
    cursor = store.get_cursor("files", "tasks")
    return status, closed_at, sorted(str(r[0]) for r in closed_by), updates, cursor


def test_a_superseded_leaders_task_read_back_commits_nothing(
    store: StateStore, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path / "crm")
    old, new = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert old.take(holds_lock=False)
    store.fence = old
    agent = Agent(store, folder)
    agent.cycle()  # tasks created, alerts recorded, as the leader
    _complete_in_file(folder)
    before = _local(store)
    assert before[0] == "open"
    assert before[1] is None
    assert before[3] == 0

    with store.engine.begin() as conn:  # the lease runs out; a standby takes over
        conn.execute(update(leadership).values(lease_expires_at=AS_OF - timedelta(days=1)))
    assert new.take(holds_lock=False)

    with pytest.raises(FencedError, match="read-back of task"):
        agent.tasks.read_back(AS_OF + timedelta(hours=4))

    assert _local(store) == before  # nothing committed: no loop, no closure, no cursor
    assert old.epoch is None  # it stepped down

    store.fence = new  # the new leader reads the same completion and closes the loop
    report = Agent(store, folder).tasks.read_back(AS_OF + timedelta(hours=4))
    assert (report.completed_in_crm, report.loops_closed) == (1, 1)
    status, closed_at, closed_by, updates, cursor = _local(store)
    assert status == "completed"
    assert closed_at is not None
    assert CLOSED_BY_CRM in closed_by
    assert updates == len(report.closed_alerts) >= 1
    assert cursor not in (None, before[4])

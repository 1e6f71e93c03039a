"""CRM tasks on the plain-file CRM, both ways, over a real SQLite file and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from agent.alerts.pipeline import close_loop
from agent.core.ports import TaskOutcome, TaskSpec
from agent.sources.filetasks import TASK_COLUMNS, FilesTasks
from agent.state.schema import alert_outbox, alert_state, responses
from agent.state.store import StateStore
from agent.tasks.sync import CLOSED_BY_CRM
from tests.tasks.portfolio import AS_OF, FALLBACK, Agent, read_tasks, write_folder, write_tasks


def _by_key(folder: Path) -> dict[str, dict[str, str]]:
    return {r["alert_key"]: r for r in read_tasks(folder)}


def _account(computed, account_id: str):  # type: ignore[no-untyped-def]
    return next(a for a in computed.document.accounts if a.id == account_id)


def test_a_cycle_creates_one_task_per_open_detractor_and_per_upsell_account(
    store: StateStore, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path / "crm")
    _, report, _ = Agent(store, folder).cycle()
    assert report.created == 3
    tasks = _by_key(folder)
    assert list(read_tasks(folder)[0]) == list(TASK_COLUMNS)
    r1 = tasks["new-detractor:responses.csv/R1"]
    assert r1["subject"] == "Call back Dana Exec (score 3, Support) within 48 h"
    assert r1["owner_email"] == "owner1@vendor.example"  # the account owner
    assert r1["due_at"] == "2026-06-02T12:00:00Z"  # submitted_at + loop_sla_hours
    assert (r1["account_id"], r1["contact_id"], r1["status"]) == ("A1", "C1", "open")
    r2 = tasks["new-detractor:responses.csv/R2"]
    assert r2["owner_email"] == FALLBACK  # the account has no owner
    promoter = [k for k in tasks if k.startswith("promoter-activation:A3:")]
    assert len(promoter) == 1  # one per upsell account, naming its most senior promoter
    assert tasks[promoter[0]]["subject"] == "Ask Gus Chief for a reference or an expansion talk"
    assert tasks[promoter[0]]["due_at"] == "2026-06-15T12:00:00Z"  # 14 days from creation


def test_a_second_cycle_creates_none(store: StateStore, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "crm")
    agent = Agent(store, folder)
    agent.cycle()
    before = (folder / "ax_tasks.csv").read_bytes()
    _, report, _ = agent.cycle(AS_OF + timedelta(hours=1))
    assert (report.planned, report.created) == (0, 0)
    assert (folder / "ax_tasks.csv").read_bytes() == before


def test_a_task_completed_in_the_file_closes_the_loop(store: StateStore, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "crm")
    agent = Agent(store, folder)
    _, _, computed = agent.cycle()
    assert _account(computed, "A1").open_detractors == 1
    rows = read_tasks(folder)
    done_at = "2026-06-01T15:30:00Z"
    for row in rows:
        if row["alert_key"] == "new-detractor:responses.csv/R1":
            row["status"], row["completed_at"] = "Completed", done_at
    write_tasks(folder, rows)

    closed, _, computed = agent.cycle(AS_OF + timedelta(hours=4))

    assert (closed.completed_in_crm, closed.loops_closed) == (1, 1)
    assert _account(computed, "A1").open_detractors == 0
    when = datetime(2026, 6, 1, 15, 30, tzinfo=UTC)
    with store.engine.connect() as conn:
        stored = conn.execute(
            select(responses.c.loop_closed_at).where(responses.c.response_id == "R1")
        ).scalar()
        state = conn.execute(
            select(alert_state).where(
                alert_state.c.rule_id == "executive-detractor",
                alert_state.c.subject == "responses.csv/R1",
            )
        ).one()
        updates = conn.execute(select(alert_outbox).where(alert_outbox.c.kind == "update")).all()
    assert stored is not None
    assert stored.astimezone(UTC) == when
    assert state.closed_by == CLOSED_BY_CRM  # no escalation any more
    assert [u.payload["content"]["refers_to"] for u in updates] == [
        "executive-detractor:responses.csv/R1"
    ]
    assert updates[0].status == "sent"  # the message was updated in place
    assert agent.tasks.repo.get("new-detractor:responses.csv/R1").status == "completed"  # type: ignore[union-attr]
    # Read again: nothing new to close.
    again, created, _ = agent.cycle(AS_OF + timedelta(hours=5))
    assert again.completed_in_crm == 0
    # Two detractor tasks, one completed within 48 h of the answer: a task closed-loop rate.
    figures = created.figures
    assert figures is not None
    assert (figures.detractor_tasks, figures.detractor_tasks_completed) == (2, 1)
    assert figures.detractor_tasks_closed_in_sla == 1
    assert figures.closed_loop_rate == 0.5


def test_a_loop_closed_in_slack_completes_the_task_in_the_file(
    store: StateStore, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path / "crm")
    agent = Agent(store, folder)
    agent.cycle()
    closed_at = AS_OF + timedelta(hours=2)
    assert close_loop(
        agent.pipeline.repo,
        "executive-detractor:responses.csv/R1",
        "U42",
        closed_at,
        timedelta(hours=48),
    )

    _, report, _ = agent.cycle(AS_OF + timedelta(hours=3))

    assert report.pushed == 1
    row = _by_key(folder)["new-detractor:responses.csv/R1"]
    assert (row["status"], row["completed_at"]) == ("completed", "2026-06-01T14:00:00Z")
    task = agent.tasks.repo.get("new-detractor:responses.csv/R1")
    assert task is not None
    assert task.status == "completed"
    assert task.closed_by == "U42"
    assert task.loop_closed_at == closed_at


class _Crashing(FilesTasks):
    """Creates the tasks in the file, then dies before the agent records them."""

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskOutcome]:
        super().create_tasks(tasks)
        raise SystemExit("killed between the CRM create and the local record")


def test_a_crash_between_create_and_record_creates_no_duplicate(
    store: StateStore, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path / "crm")
    crashing = Agent(store, folder, crm=_Crashing(folder))
    with contextlib.suppress(SystemExit):
        crashing.cycle()
    assert len(read_tasks(folder)) == 3
    assert {t.status for t in crashing.tasks.repo.rows("pending")} == {"pending"}

    _, report, _ = Agent(store, folder).cycle(AS_OF + timedelta(minutes=5))

    assert (report.recovered, report.created) == (3, 0)
    assert len(read_tasks(folder)) == 3
    assert len(crashing.tasks.repo.rows("open")) == 3


class _Refusing(FilesTasks):
    """Refuses some tasks of a batch, as a CRM answers per record."""

    def __init__(self, folder: Path, refuse: set[str]) -> None:
        super().__init__(folder)
        self.refuse = refuse

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskOutcome]:
        ok = super().create_tasks([t for t in tasks if t.key not in self.refuse])
        by_key = {o.key: o for o in ok}
        return [
            by_key.get(t.key)
            or TaskOutcome(
                t.key, ok=False, error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="no"
            )
            for t in tasks
        ]


def test_a_refused_task_keeps_its_error_and_is_retried(store: StateStore, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "crm")
    key = "new-detractor:responses.csv/R2"
    agent = Agent(store, folder, crm=_Refusing(folder, {key}))
    _, report, _ = agent.cycle()
    assert (report.created, report.failed) == (2, 1)
    pending = agent.tasks.repo.get(key)
    assert pending is not None
    assert pending.status == "pending"
    assert pending.last_error == "FIELD_CUSTOM_VALIDATION_EXCEPTION: no"

    _, retry, _ = Agent(store, folder).cycle(AS_OF + timedelta(minutes=5))
    assert (retry.created, retry.failed) == (1, 0)
    assert _by_key(folder)[key]["status"] == "open"


def test_promoter_tasks_repeat_only_after_90_days(store: StateStore, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "crm")
    agent = Agent(store, folder)
    agent.cycle()
    _, later, _ = agent.cycle(AS_OF + timedelta(days=89))
    assert later.created == 0
    _, due, _ = agent.cycle(AS_OF + timedelta(days=91))
    promoter = [k for k in _by_key(folder) if k.startswith("promoter-activation:")]
    assert due.created == 1
    assert len(promoter) == 2

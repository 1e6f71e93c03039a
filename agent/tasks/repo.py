"""The task outbox over the state store's ``crm_tasks`` table.

As with alerts: a task is recorded ``pending`` before anything goes to the CRM;
``attempts`` is raised and committed before each create call, so after a crash a
pending task with attempts > 0 may already be in the CRM and is looked up there by
its key before it is created again. ``open`` means the CRM holds it; ``completed``
means the loop is closed, on whichever side it closed first, with both times kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, select, update
from sqlalchemy.sql.dml import Update

from agent.core.batching import chunked
from agent.core.document import TaskFigures
from agent.core.metrics.tasks import TaskRecord, task_figures
from agent.core.ports import TaskPriority
from agent.state.dialect import bulk_write, read_only
from agent.state.pieces import commit_in_pieces
from agent.state.schema import alert_state, crm_tasks, responses
from agent.tasks.plan import PlannedTask

__all__ = ["TaskRepo", "TaskRow"]

_CHUNK = 500
_ERROR_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A row of the task outbox."""

    key: str
    crm: str
    rule_id: str
    subject: str
    account_id: str
    contact_id: str | None
    response_source: str | None
    response_id: str | None
    owner_email: str | None
    owner_id: str | None
    fallback_email: str | None
    title: str
    body: str
    due_at: datetime
    priority: TaskPriority
    status: str
    crm_task_id: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    crm_completed_at: datetime | None
    loop_closed_at: datetime | None
    closed_by: str | None


class TaskRepo:
    def __init__(self, engine: Engine, crm: str) -> None:
        self.engine = engine
        self.crm = crm

    # -- planning --------------------------------------------------------------------

    def known(self, keys: Iterable[str]) -> set[str]:
        """The keys already recorded (whatever their status)."""
        found: set[str] = set()
        with read_only(self.engine) as conn:
            for chunk in chunked(list(keys), _CHUNK):
                query = select(crm_tasks.c.key).where(crm_tasks.c.key.in_(chunk))
                found.update(conn.execute(query).scalars())
        return found

    def recent(self, rule_ids: Iterable[str]) -> dict[tuple[str, str], datetime]:
        """The newest task time per (rule, account) of these rules."""
        ids = list(rule_ids)
        if not ids:
            return {}
        c = crm_tasks.c
        query = (
            select(c.rule_id, c.account_id, func.max(c.created_at))
            .where(c.rule_id.in_(ids), c.crm == self.crm)
            .group_by(c.rule_id, c.account_id)
        )
        with read_only(self.engine) as conn:
            return {(r[0], r[1]): _utc(r[2]) for r in conn.execute(query)}

    def record(self, planned: Sequence[PlannedTask]) -> int:
        """Store new tasks ``pending``; a key recorded already is left as it is.

        A piece at a time, each in a transaction of its own (``agent.state.pieces``):
        a cycle may plan 10,000 tasks, and a webhook's answer waits for one piece only.
        Nothing is sent before the recording returns; a crash part-way leaves some
        tasks recorded, which the next cycle's plan finds known (keys are the alert
        keys) while it plans the others again, as after a crash before any of them.
        """
        known = self.known(p.key for p in planned)
        rows = [_row(p, self.crm) for p in planned if p.key not in known]
        commit_in_pieces(
            self.engine.begin, rows, lambda conn, piece: bulk_write(conn, crm_tasks, piece)
        )
        return len(rows)

    # -- delivery --------------------------------------------------------------------

    def rows(self, status: str, limit: int = 10_000) -> list[TaskRow]:
        c = crm_tasks.c
        query = (
            select(crm_tasks)
            .where(c.status == status, c.crm == self.crm)
            .order_by(c.created_at, c.key)
            .limit(limit)
        )
        with read_only(self.engine) as conn:
            return [_task(r) for r in conn.execute(query)]

    def get(self, key: str) -> TaskRow | None:
        with read_only(self.engine) as conn:
            row = conn.execute(select(crm_tasks).where(crm_tasks.c.key == key)).first()
        return _task(row) if row is not None else None

    def mark_attempt(
        self, keys: Sequence[str], owners: dict[str, tuple[str | None, str | None]]
    ) -> None:
        """Committed before the create call: a crash after it means "maybe created".

        In pieces (``agent.state.pieces``): the call follows only once every piece is
        committed, and a crash between pieces leaves some tasks "maybe created" that are
        not, which the next try looks up in the CRM before it creates them.
        """
        c = crm_tasks.c
        stmt = (
            update(crm_tasks)
            .where(c.key == bindparam("b_key"))
            .values(
                attempts=c.attempts + 1,
                owner_email=bindparam("b_email"),
                owner_id=bindparam("b_id"),
            )
        )
        rows = [
            {"b_key": key, "b_email": email, "b_id": owner_id}
            for key in keys
            for email, owner_id in [owners.get(key, (None, None))]
        ]
        self._update(stmt, rows)

    def mark_created(self, found: dict[str, str], now: datetime) -> None:
        """These keys are in the CRM (created now, or found after a crash): ``open``.

        In pieces: a crash between them leaves the others pending with an attempt made,
        so the next try finds them in the CRM and marks them then."""
        c = crm_tasks.c
        stmt = (
            update(crm_tasks)
            .where(c.key == bindparam("b_key"), c.status == "pending")
            .values(status="open", crm_task_id=bindparam("b_task"), sent_at=now, last_error=None)
        )
        self._update(stmt, [{"b_key": key, "b_task": task} for key, task in found.items()])

    def mark_error(self, errors: dict[str, str]) -> None:
        """Per-task errors: the task stays pending and is tried again next cycle."""
        stmt = (
            update(crm_tasks)
            .where(crm_tasks.c.key == bindparam("b_key"))
            .values(last_error=bindparam("b_error"))
        )
        rows = [{"b_key": key, "b_error": error[:_ERROR_LIMIT]} for key, error in errors.items()]
        self._update(stmt, rows)

    def _update(self, stmt: Update, rows: Sequence[Mapping[str, Any]]) -> None:
        """``stmt`` once per row, a piece of rows per transaction."""
        commit_in_pieces(self.engine.begin, rows, lambda conn, piece: conn.execute(stmt, piece))

    # -- closing the loop ----------------------------------------------------------

    def by_task_ids(self, task_ids: Iterable[str]) -> dict[str, TaskRow]:
        out: dict[str, TaskRow] = {}
        with read_only(self.engine) as conn:
            for chunk in chunked(list(task_ids), _CHUNK):
                query = select(crm_tasks).where(
                    crm_tasks.c.crm_task_id.in_(chunk), crm_tasks.c.crm == self.crm
                )
                out.update((r.crm_task_id, _task(r)) for r in conn.execute(query))
        return out

    def completed_in_crm(self, conn: Connection, key: str, completed_at: datetime) -> None:
        """The CRM says done: the task is completed; the response's loop closes too
        (unless it closed earlier, whose time stands). Inside the caller's transaction,
        which the leader's fence holds."""
        row = conn.execute(select(crm_tasks).where(crm_tasks.c.key == key)).first()
        if row is None:
            return
        conn.execute(
            update(crm_tasks)
            .where(crm_tasks.c.key == key)
            .values(status="completed", crm_completed_at=completed_at, push_completion=False)
        )
        if row.response_source is not None and row.response_id is not None:
            conn.execute(
                update(responses)
                .where(
                    responses.c.source == row.response_source,
                    responses.c.response_id == row.response_id,
                    responses.c.loop_closed_at.is_(None),
                )
                .values(loop_closed_at=completed_at)
            )

    @staticmethod
    def open_states(conn: Connection, subject: str) -> list[tuple[str, str | None]]:
        """(rule id, alert id) of the alert states of ``subject`` whose loop is open."""
        key = and_(alert_state.c.subject == subject, alert_state.c.closed_at.is_(None))
        query = select(alert_state.c.rule_id, alert_state.c.last_alert_id).where(key)
        return [(r.rule_id, r.last_alert_id) for r in conn.execute(query)]

    def closed_elsewhere(self, subjects: Iterable[str]) -> dict[str, tuple[datetime, str]]:
        """Subjects whose loop an alert state records closed (Slack button, survey, CRM field)."""
        out: dict[str, tuple[datetime, str]] = {}
        c = alert_state.c
        with read_only(self.engine) as conn:
            for chunk in chunked(list(subjects), _CHUNK):
                query = select(c.subject, c.closed_at, c.closed_by).where(
                    c.subject.in_(chunk), c.closed_at.is_not(None)
                )
                for r in conn.execute(query):
                    when = _utc(r.closed_at)
                    if r.subject not in out or when < out[r.subject][0]:
                        out[r.subject] = (when, r.closed_by or "Slack")
        return out

    def request_completion(self, closed: dict[str, tuple[datetime, str]]) -> None:
        """The loop closed here: complete these (key -> when, by whom) in the CRM.

        In pieces: a crash between them leaves the others to ask for, which the next
        cycle finds closed here again."""
        c = crm_tasks.c
        stmt = (
            update(crm_tasks)
            .where(c.key == bindparam("b_key"), c.status != "completed")
            .values(
                loop_closed_at=bindparam("b_when"),
                closed_by=bindparam("b_by"),
                push_completion=True,
            )
        )
        rows = [
            {"b_key": key, "b_when": when, "b_by": by[:255]} for key, (when, by) in closed.items()
        ]
        self._update(stmt, rows)

    def to_push(self) -> list[TaskRow]:
        """Open tasks whose loop closed here: the CRM must mark them completed."""
        c = crm_tasks.c
        query = select(crm_tasks).where(
            c.push_completion.is_(True), c.status == "open", c.crm == self.crm
        )
        with read_only(self.engine) as conn:
            return [_task(r) for r in conn.execute(query)]

    def mark_completed(self, keys: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            for chunk in chunked(list(keys), _CHUNK):
                conn.execute(
                    update(crm_tasks)
                    .where(crm_tasks.c.key.in_(chunk))
                    .values(status="completed", push_completion=False, last_error=None)
                )

    def figures(self, as_of: datetime, loop_sla: timedelta) -> TaskFigures:
        """The document's ``tasks`` section as of ``as_of`` (``agent.core.metrics.tasks``):
        every task of this CRM, a detractor's callback known by its answer's score."""
        c, r = crm_tasks.c, responses.c
        query = (
            select(
                c.created_at,
                c.sent_at,
                c.due_at,
                c.status,
                c.crm_completed_at,
                c.loop_closed_at,
                r.score,
                r.submitted_at,
            )
            .select_from(
                crm_tasks.outerjoin(
                    responses,
                    and_(r.source == c.response_source, r.response_id == c.response_id),
                )
            )
            .where(c.crm == self.crm)
        )
        with read_only(self.engine) as conn:
            records = [
                TaskRecord(
                    created_at=_utc(row.created_at),
                    sent_at=_maybe(row.sent_at),
                    due_at=_utc(row.due_at),
                    status=row.status,
                    crm_completed_at=_maybe(row.crm_completed_at),
                    loop_closed_at=_maybe(row.loop_closed_at),
                    detractor_submitted_at=(
                        _maybe(row.submitted_at)
                        if row.score is not None and row.score <= 6
                        else None
                    ),
                )
                for row in conn.execute(query)
            ]
        return task_figures(self.crm, records, as_of, loop_sla)

    def counts(self) -> dict[str, int]:
        """Tasks by status (for logs, ``state show`` and the report)."""
        c = crm_tasks.c
        query = select(c.status, func.count()).where(c.crm == self.crm).group_by(c.status)
        with read_only(self.engine) as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _maybe(value: datetime | None) -> datetime | None:
    return _utc(value) if value is not None else None


def _row(p: PlannedTask, crm: str) -> dict[str, Any]:
    return {
        "key": p.key,
        "crm": crm,
        "rule_id": p.rule_id,
        "subject": p.subject,
        "account_id": p.account_id,
        "contact_id": p.contact_id,
        "response_source": p.response_source,
        "response_id": p.response_id,
        "owner_email": p.owner_email,
        "owner_id": None,
        "fallback_email": p.fallback_email,
        "title": p.title,
        "body": p.body,
        "due_at": p.due_at,
        "priority": p.priority,
        "status": "pending",
        "crm_task_id": None,
        "attempts": 0,
        "last_error": None,
        "created_at": p.created_at,
        "sent_at": None,
        "crm_completed_at": None,
        "loop_closed_at": None,
        "closed_by": None,
        "push_completion": False,
    }


def _task(row: Any) -> TaskRow:
    return TaskRow(
        key=row.key,
        crm=row.crm,
        rule_id=row.rule_id,
        subject=row.subject,
        account_id=row.account_id,
        contact_id=row.contact_id,
        response_source=row.response_source,
        response_id=row.response_id,
        owner_email=row.owner_email,
        owner_id=row.owner_id,
        fallback_email=row.fallback_email,
        title=row.title,
        body=row.body,
        due_at=_utc(row.due_at),
        priority=row.priority,
        status=row.status,
        crm_task_id=row.crm_task_id,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=_utc(row.created_at),
        crm_completed_at=_maybe(row.crm_completed_at),
        loop_closed_at=_maybe(row.loop_closed_at),
        closed_by=row.closed_by,
    )

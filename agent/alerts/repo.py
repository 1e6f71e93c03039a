"""The outbox, alert state and silences, over the state store's tables.

An alert is recorded ``pending`` (with the state change that caused it, in one
transaction) before anything is sent; ``attempts`` is raised and committed before
each send, so after a crash a pending alert with attempts > 0 may already be in
Slack and is looked up there before it is sent again. An alert with an attachment
is sent in two steps: its message is recorded (``message_ts`` of a row still
``pending``) before the attachment goes out, so a retry only adds the attachment.

On the running agent the repository carries the leader's ``Fence``: each send is
claimed on its row (``claimed_epoch``) by a statement only the current leadership
epoch can win, and each mark after a send commits only while that epoch leads. A
superseded leader's claim or mark raises ``FencedError``; it sends nothing more.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql import Select

from agent.alerts.model import (
    AlertContent,
    AlertKind,
    AlertState,
    Destination,
    OutboxAlert,
    Sent,
    Silence,
)
from agent.core.redaction import redact
from agent.state.dialect import bulk_write, plain_rows, read_only
from agent.state.leader_epoch import Fence
from agent.state.schema import alert_outbox, alert_state, silences

__all__ = ["AlertRepo", "OutboxRecord", "OutboxRow"]

_ERROR_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A new outbox row: an alert (or digest, escalation, update) to send."""

    content: AlertContent
    scope: str
    subject: str
    destination: Destination
    created_at: datetime
    status: str = "pending"
    target: Sent | None = None
    #: For a digest: the alert ids it stands for (stored ``digested``).
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A row as ``alerts list`` shows it."""

    alert_id: str
    rule_id: str
    kind: str
    subject: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    channel: str | None
    last_error: str | None


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is stored in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _must(value: datetime | None) -> datetime:
    result = _utc(value)
    if result is None:
        raise ValueError("a required time is missing")
    return result


class AlertRepo:
    def __init__(self, engine: Engine, fence: Fence | None = None) -> None:
        self.engine = engine
        #: The leader's fence (None outside the running agent: commands, tests).
        self.fence = fence
        #: A ``time.monotonic()`` after which delivery stops (set while the agent stops).
        self.drain_deadline: float | None = None
        #: Sends recorded with the next commit (``mark_sent(..., later=True)``).
        self._marks: list[tuple[str, Sent, datetime]] = []
        self._marks_lock = threading.Lock()  # a batch may be claimed while sends are marked
        #: Held by whoever delivers: one sender per process, whichever thread asks.
        self.sending = threading.Lock()
        #: Held while recording: new answers are decided on a thread of their own while
        #: a cycle's evaluation may record the same alert; one recorder at a time sees
        #: the other's rows (PostgreSQL's read committed would let both insert them).
        self._recording = threading.Lock()
        #: When set (the running agent), new outbox rows are stamped with the moment
        #: they are written rather than the cycle's evaluation time.
        self.clock: Callable[[], datetime] | None = None

    @contextmanager
    def _tx(self, conn: Connection | None) -> Iterator[Connection]:
        """``conn`` as it is (its owner commits), or a transaction of our own."""
        if conn is not None:
            yield conn
            return
        with self.engine.begin() as own:
            yield own

    def _reading(self) -> Connection:
        """A connection for reads: on SQLite it never waits for the write lock, so
        delivery reads on while a burst of answers is being recorded."""
        return read_only(self.engine)

    # ---- state -------------------------------------------------------------------

    def states(self, rule_ids: Iterable[str]) -> dict[tuple[str, str], AlertState]:
        ids = list(rule_ids)
        if not ids:
            return {}
        with self._reading() as conn:
            return _states(conn, select(*_STATE_COLUMNS).where(alert_state.c.rule_id.in_(ids)))

    def states_digest(self, rule_ids: Iterable[str]) -> str:
        """A digest of every state of ``rule_ids``: equal exactly when ``states`` would
        give equal states (what a deciding job compares with its last run's).

        Read a row at a time and never held: the states themselves, about 65 MB at
        50,000 accounts, were kept between runs by each deciding job for the comparison."""
        ids = sorted(set(rule_ids))
        digest = hashlib.blake2b(digest_size=16)
        if ids:
            c = alert_state.c
            stmt = select(*_STATE_COLUMNS).where(c.rule_id.in_(ids)).order_by(c.rule_id, c.subject)
            with self._reading() as conn:
                for row in plain_rows(conn, stmt, chunk=1_000):
                    digest.update(repr(row).encode())
                    digest.update(b"\n")
        return digest.hexdigest()

    def states_of(
        self, rule_ids: Iterable[str], subjects: Iterable[str]
    ) -> dict[tuple[str, str], AlertState]:
        """The states of ``rule_ids`` for the given subjects only (a few answers' path)."""
        ids, wanted = list(rule_ids), list(subjects)
        if not ids or not wanted:
            return {}
        c = alert_state.c
        with self._reading() as conn:
            stmt = select(*_STATE_COLUMNS).where(c.rule_id.in_(ids), c.subject.in_(wanted))
            return _states(conn, stmt)

    def record(
        self,
        records: Sequence[OutboxRecord],
        states: Sequence[AlertState],
        *,
        conn: Connection | None = None,
    ) -> int:
        """Store new outbox rows and state changes together; return rows added.

        With ``conn``, inside that open transaction (committed by its owner; not
        serialised with the other recorders: its owner may hold the write lock they wait
        for)."""
        if conn is not None:
            return self._record(conn, records, states)
        with self._recording, self._tx(None) as tx:
            return self._record(tx, records, states)

    def _record(
        self, tx: Connection, records: Sequence[OutboxRecord], states: Sequence[AlertState]
    ) -> int:
        if self.clock is not None and records:
            written = self.clock()
            records = [replace(r, created_at=max(r.created_at, written)) for r in records]
        _upsert_states(tx, states)
        return _insert_outbox_rows(tx, records)

    def close(
        self,
        alert_id: str,
        closed_by: str,
        closed_at: datetime,
        *,
        conn: Connection | None = None,
    ) -> AlertState | None:
        """Mark the loop of an alert's subject closed; None if unknown or closed already."""
        with self._tx(conn) as tx:
            row = tx.execute(
                select(alert_outbox.c.rule_id, alert_outbox.c.subject).where(
                    alert_outbox.c.alert_id == alert_id
                )
            ).first()
            if row is None:
                return None
            key = and_(alert_state.c.rule_id == row.rule_id, alert_state.c.subject == row.subject)
            found = tx.execute(select(alert_state).where(key)).first()
            if found is None or found.closed_at is not None:
                return None
            values = {"closed_at": closed_at.astimezone(UTC), "closed_by": closed_by}
            # still open as the update finds it: a close committed since the read above
            # (another button press, another replica) stands
            open_ = and_(key, alert_state.c.closed_at.is_(None))
            if not tx.execute(update(alert_state).where(open_).values(**values)).rowcount:
                return None
            return _state(tx.execute(select(alert_state).where(key)).one())

    # ---- outbox ------------------------------------------------------------------

    def pending(
        self, limit: int = 500, after: tuple[datetime, str] | None = None
    ) -> list[OutboxAlert]:
        """Pending rows, oldest first; ``after`` (created_at, alert_id) pages on."""
        c = alert_outbox.c
        query = (
            select(alert_outbox)
            .where(c.status == "pending")
            .order_by(c.created_at, c.alert_id)
            .limit(limit)
        )
        if after is not None:
            at, alert_id = after
            at = at.astimezone(UTC)
            query = query.where(
                or_(c.created_at > at, and_(c.created_at == at, c.alert_id > alert_id))
            )
        with self._reading() as conn:
            return [_outbox(r) for r in conn.execute(query)]

    def pending_count(self) -> int:
        """How many alerts wait for delivery (the outbox size ``/metrics`` reports)."""
        query = select(func.count()).where(alert_outbox.c.status == "pending")
        with self._reading() as conn:
            return int(conn.execute(query).scalar_one())

    def get(self, alert_id: str, *, conn: Connection | None = None) -> OutboxAlert | None:
        """One outbox row; with ``conn``, as that open transaction sees it."""
        query = select(alert_outbox).where(alert_outbox.c.alert_id == alert_id)
        if conn is not None:
            row = conn.execute(query).first()
        else:
            with self._reading() as own:
                row = own.execute(query).first()
        return _outbox(row) if row is not None else None

    def status(self, alert_id: str) -> str | None:
        with self._reading() as conn:
            return conn.execute(
                select(alert_outbox.c.status).where(alert_outbox.c.alert_id == alert_id)
            ).scalar()

    def sent_message(self, alert_id: str) -> Sent | None:
        """Where an alert's message is (a digested alert points at its digest)."""
        with self._reading() as conn:
            row = conn.execute(
                select(alert_outbox).where(alert_outbox.c.alert_id == alert_id)
            ).first()
        if row is None or row.status not in ("sent", "digested") or row.message_ts is None:
            return None
        return Sent(channel=row.message_channel, ts=row.message_ts)

    def claim(self, alert_id: str, channel_id: str | None) -> bool:
        """Claim a pending row for one send, committed before the send: a crash after
        it means "maybe sent", so the next try looks in Slack first.

        Fenced: only the current leadership epoch wins the claim (``FencedError``
        otherwise). False when the row is no longer pending (nothing to send).
        """
        c = alert_outbox.c
        where = and_(c.alert_id == alert_id, c.status == "pending")
        values = {"attempts": c.attempts + 1, "message_channel": channel_id}
        with self.engine.begin() as conn:
            self._write_marks(conn)  # the sends before this one, in the same commit
            return self._claim_in(conn, alert_id, where, values)

    def claim_many(self, claims: Sequence[tuple[str, str | None]]) -> set[str]:
        """``claim`` for several rows in one transaction (one commit before their sends).

        Fenced like ``claim``: the whole set is refused (``FencedError``) when this
        epoch no longer leads. Returns the ids claimed (the rows still pending).
        """
        c = alert_outbox.c
        claimed: set[str] = set()
        with self.engine.begin() as conn:
            self._write_marks(conn)
            for alert_id, channel_id in claims:
                where = and_(c.alert_id == alert_id, c.status == "pending")
                values = {"attempts": c.attempts + 1, "message_channel": channel_id}
                if self._claim_in(conn, alert_id, where, values):
                    claimed.add(alert_id)
        return claimed

    def _claim_in(
        self, conn: Connection, alert_id: str, where: Any, values: dict[str, Any]
    ) -> bool:
        if self.fence is not None:
            return self.fence.claim_row(
                alert_outbox, where, values, conn=conn, what=f"alert {alert_id}"
            )
        return conn.execute(update(alert_outbox).where(where).values(**values)).rowcount == 1

    def confirm(self, alert: OutboxAlert) -> None:
        """Right before a send of a row claimed in a batch: this epoch still leads
        (``FencedError`` otherwise). A read: the claim was committed with the batch."""
        if self.fence is not None:
            self.fence.claim(f"alert {alert.alert_id}")

    def release(self, alert_ids: Iterable[str]) -> None:
        """Give back claims whose sends never started (delivery stopped before them):
        their rows are as unsent as before the claim, so no lookup in Slack is needed."""
        ids = list(alert_ids)
        if not ids:
            return
        c = alert_outbox.c
        with self.engine.begin() as conn:
            self._write_marks(conn)
            self._hold(conn, f"releasing {len(ids)} unsent alert(s)")
            conn.execute(
                update(alert_outbox)
                .where(c.alert_id.in_(ids), c.status == "pending", c.attempts > 0)
                .values(attempts=c.attempts - 1)
            )

    def flush(self) -> None:
        """Record the sends ``mark_sent(..., later=True)`` left for the next commit."""
        if not self._marks:
            return
        with self.engine.begin() as conn:
            self._write_marks(conn)

    def _write_marks(self, conn: Connection) -> None:
        with self._marks_lock:
            marks, self._marks = self._marks, []
        for alert_id, sent, now in marks:
            self._hold(conn, f"recording alert {alert_id} sent")
            _mark_sent(conn, alert_id, sent, now)

    def mark_attempt(self, alert_id: str, channel_id: str | None) -> None:
        """``claim`` without its answer (kept for callers that need no answer)."""
        self.claim(alert_id, channel_id)

    def past_deadline(self) -> bool:
        """Whether delivery must stop now (the agent is stopping and its grace is over)."""
        deadline = self.drain_deadline
        return deadline is not None and time.monotonic() >= deadline

    def _hold(self, conn: Connection, what: str) -> None:
        if self.fence is not None:
            self.fence.hold(conn, what)

    def mark_posted(self, alert_id: str, message: Sent) -> None:
        """The message of a two-step alert is in Slack; its attachment is still to come."""
        values = {"message_ts": message.ts, "message_channel": message.channel, "last_error": None}
        with self.engine.begin() as conn:
            self._hold(conn, f"recording alert {alert_id} posted")
            conn.execute(
                update(alert_outbox)
                .where(alert_outbox.c.alert_id == alert_id, alert_outbox.c.status == "pending")
                .values(**values)
            )

    def mark_sent(self, alert_id: str, sent: Sent, now: datetime, *, later: bool = False) -> None:
        """Record the alert sent; ``later`` rides on the next claim's commit (or ``flush``).

        Deferring is safe: until it is recorded, a row with ``attempts > 0`` is looked
        up in Slack before any new send, so a lost mark costs a lookup, never a double.
        It halves the commits per alert while a burst drains.
        """
        if later:
            with self._marks_lock:
                self._marks.append((alert_id, sent, now))
            return
        with self.engine.begin() as conn:
            self._hold(conn, f"recording alert {alert_id} sent")
            _mark_sent(conn, alert_id, sent, now)

    def requeue_printed(self, since: datetime) -> int:
        """Queue again every alert that was only printed (no Slack token) since ``since``.

        Nothing printed is ever sent on its own once a token is configured: old alerts
        would reach Slack out of the blue. This is the explicit way to send them.
        """
        values: dict[str, Any] = {
            "status": "pending",
            "attempts": 0,
            "sent_at": None,
            "message_ts": None,
            "message_channel": None,
            "last_error": None,
        }
        with self.engine.begin() as conn:
            result = conn.execute(
                update(alert_outbox)
                .where(
                    alert_outbox.c.status == "printed",
                    alert_outbox.c.created_at >= since.astimezone(UTC),
                )
                .values(**values)
            )
        return int(result.rowcount)

    def mark_error(self, alert_id: str, error: str, *, failed: bool = False) -> None:
        values: dict[str, Any] = {"last_error": redact(error)[:_ERROR_LIMIT]}
        if failed:
            values["status"] = "failed"
        with self.engine.begin() as conn:
            self._hold(conn, f"recording alert {alert_id}'s error")
            conn.execute(
                update(alert_outbox).where(alert_outbox.c.alert_id == alert_id).values(**values)
            )

    def mark_status(self, alert_id: str, status: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            self._hold(conn, f"recording alert {alert_id} {status}")
            conn.execute(
                update(alert_outbox)
                .where(alert_outbox.c.alert_id == alert_id)
                .values(status=status, last_error=redact(error) if error else error)
            )

    def recent(self, limit: int = 50, status: str | None = None) -> list[OutboxRow]:
        query = select(alert_outbox).order_by(alert_outbox.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(alert_outbox.c.status == status)
        with self._reading() as conn:
            return [
                OutboxRow(
                    alert_id=r.alert_id,
                    rule_id=r.rule_id,
                    kind=r.kind,
                    subject=r.subject,
                    status=r.status,
                    attempts=r.attempts,
                    created_at=_must(r.created_at),
                    sent_at=_utc(r.sent_at),
                    channel=r.message_channel or r.channel,
                    last_error=r.last_error,
                )
                for r in conn.execute(query)
            ]

    # ---- silences ----------------------------------------------------------------

    def add_silence(
        self,
        *,
        rule_id: str | None,
        account_id: str | None,
        reason: str,
        created_by: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> int:
        if rule_id is None and account_id is None:
            raise ValueError("a silence needs a rule or an account")
        values = {
            "rule_id": rule_id,
            "account_id": account_id,
            "reason": reason,
            "created_by": created_by,
            "created_at": now.astimezone(UTC),
            "expires_at": expires_at.astimezone(UTC),
        }
        with self.engine.begin() as conn:
            result = conn.execute(insert(silences).values(**values))
            key = result.inserted_primary_key
            if key is None:
                raise RuntimeError("the database did not return the silence's id")
            return int(key[0])

    def remove_silence(self, silence_id: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(silences).where(silences.c.id == silence_id)).rowcount > 0

    def silences(self, now: datetime, *, include_expired: bool = False) -> list[Silence]:
        query = select(silences).order_by(silences.c.expires_at)
        if not include_expired:
            query = query.where(silences.c.expires_at > now.astimezone(UTC))
        with self._reading() as conn:
            return [
                Silence(
                    id=r.id,
                    rule_id=r.rule_id,
                    account_id=r.account_id,
                    reason=r.reason,
                    created_by=r.created_by,
                    created_at=_must(r.created_at),
                    expires_at=_must(r.expires_at),
                )
                for r in conn.execute(query)
            ]


def _mark_sent(conn: Connection, alert_id: str, sent: Sent, now: datetime) -> None:
    values = {
        "status": "printed" if sent.printed else "sent",
        "sent_at": now.astimezone(UTC),
        "message_ts": sent.ts,
        "message_channel": sent.channel,
        "last_error": None,
    }
    where = alert_outbox.c.alert_id == alert_id
    conn.execute(update(alert_outbox).where(where).values(**values))
    payload = conn.execute(select(alert_outbox.c.payload).where(where)).scalar()
    members = list((payload or {}).get("members", []))
    if members:
        del values["status"]
        conn.execute(
            update(alert_outbox)
            .where(alert_outbox.c.alert_id.in_(members), alert_outbox.c.status == "digested")
            .values(**values)
        )


#: ``alert_state``'s columns in ``AlertState``'s field order.
_STATE_COLUMNS = tuple(alert_state.c[f.name] for f in fields(AlertState))


def _states(conn: Connection, stmt: Select[Any]) -> dict[tuple[str, str], AlertState]:
    """The states ``stmt`` selects (``_STATE_COLUMNS``), by (rule, subject).

    Read as plain rows: every alert and escalation run reads all states, 50,000 of them
    at 50,000 accounts, and SQLAlchemy's rows (a regular expression per instant on
    SQLite) took about a second of each such read."""
    return {(row[0], row[1]): AlertState(*row) for row in plain_rows(conn, stmt)}


def _state(row: Any) -> AlertState:
    return AlertState(
        rule_id=row.rule_id,
        subject=row.subject,
        firing=bool(row.firing),
        since=_must(row.since),
        last_alert_at=_utc(row.last_alert_at),
        last_alert_id=row.last_alert_id,
        escalated_at=_utc(row.escalated_at),
        closed_at=_utc(row.closed_at),
        closed_by=row.closed_by,
    )


#: Keys per ``IN (...)`` lookup: well under SQLite's and PostgreSQL's parameter limits.
_LOOKUP = 500


def _upsert_states(conn: Connection, states: Sequence[AlertState]) -> None:
    """Insert or update every state in a few statements (a cycle at 50k accounts has
    thousands): one lookup per chunk of keys, then batched updates and inserts."""
    latest = {(s.rule_id, s.subject): s for s in states}  # the last change of a key wins
    keys = list(latest)
    existing: set[tuple[str, str]] = set()
    for start in range(0, len(keys), _LOOKUP):
        chunk = keys[start : start + _LOOKUP]
        found = conn.execute(
            select(alert_state.c.rule_id, alert_state.c.subject).where(
                tuple_(alert_state.c.rule_id, alert_state.c.subject).in_(chunk)
            )
        )
        existing.update((r.rule_id, r.subject) for r in found)
    # Rows are built and written _OUTBOX_CHUNK states at a time, in the caller's one
    # transaction: a first cycle at 50,000 accounts records about 47,000 states, whose
    # rows and bound parameters at once were the largest part of the alerts job's peak.
    changed = (
        update(alert_state)
        .where(
            alert_state.c.rule_id == bindparam("k_rule"),
            alert_state.c.subject == bindparam("k_subject"),
        )
        .values({**{name: bindparam(name) for name in _STATE_VALUES}, **_CLOSURE_KEPT})
    )

    def known(key: tuple[str, str]) -> dict[str, Any]:
        return {"k_rule": key[0], "k_subject": key[1], **_state_values(latest[key])}

    for start in range(0, len(keys), _OUTBOX_CHUNK):
        chunk = keys[start : start + _OUTBOX_CHUNK]
        updates = [known(k) for k in chunk if k in existing]
        new = [k for k in chunk if k not in existing]
        if updates:
            conn.execute(changed, updates)
        if not new:
            continue
        rows = [{"rule_id": k[0], "subject": k[1], **_state_values(latest[k])} for k in new]
        written = bulk_write(conn, alert_state, rows, inserted=True)
        if written is not None:
            # PostgreSQL: another transaction stored some of these keys since the
            # lookup; they are updated as known ones are (a closure it holds stays)
            raced = set(new) - {(rule, subject) for rule, subject in written}
            conn.execute(changed, [known(k) for k in raced])


_STATE_VALUES = (
    "firing",
    "since",
    "last_alert_at",
    "last_alert_id",
    "escalated_at",
    "closed_at",
    "closed_by",
)


#: A loop once closed stays closed (its first closure stands, as ``AlertRepo.close``
#: says): a decision over a state read before a button closed it (an HTTP thread, or
#: another replica) records that state as it read it, without the closure.
_CLOSURE_KEPT = {
    "closed_at": func.coalesce(
        alert_state.c.closed_at, bindparam("closed_at", type_=alert_state.c.closed_at.type)
    ),
    "closed_by": case(
        (alert_state.c.closed_at.is_(None), bindparam("closed_by")),
        else_=alert_state.c.closed_by,
    ),
}


def _state_values(state: AlertState) -> dict[str, Any]:
    return {
        "firing": state.firing,
        "since": state.since.astimezone(UTC),
        "last_alert_at": state.last_alert_at.astimezone(UTC) if state.last_alert_at else None,
        "last_alert_id": state.last_alert_id,
        "escalated_at": state.escalated_at.astimezone(UTC) if state.escalated_at else None,
        "closed_at": state.closed_at.astimezone(UTC) if state.closed_at else None,
        "closed_by": state.closed_by,
    }


def _insert_outbox_rows(conn: Connection, records: Sequence[OutboxRecord]) -> int:
    """Insert the records whose alert id is new (an id already stored is kept as it is)."""
    ids = list(dict.fromkeys(r.content.alert_id for r in records))
    stored: set[str] = set()
    for start in range(0, len(ids), _LOOKUP):
        chunk = ids[start : start + _LOOKUP]
        found = conn.execute(
            select(alert_outbox.c.alert_id).where(alert_outbox.c.alert_id.in_(chunk))
        )
        stored.update(found.scalars())
    # Rows are built and inserted _OUTBOX_CHUNK records at a time, all in the caller's
    # one transaction: a first cycle at 50,000 accounts records about 47,000 alerts,
    # and their rows (each with its whole content as JSON) at once were the largest
    # part of the alerts job's memory. The database's bulk path writes them
    # (``bulk_write``: executemany on SQLite, COPY on PostgreSQL), as the store
    # writes responses: SQLAlchemy's per-row binding was half of recording's time.
    # Another transaction may store one of these ids after the lookup (the Close
    # button's repository and the escalation job record the same update; replicas):
    # its row stands, and only the rows written here are counted.
    inserted = 0
    rows: list[dict[str, Any]] = []
    for record in records:
        alert_id = record.content.alert_id
        if alert_id in stored:
            continue
        stored.add(alert_id)  # a second record with the same id in one batch: the first wins
        rows.append(_outbox_row(record))
        if len(rows) == _OUTBOX_CHUNK:
            inserted += _insert_new(conn, alert_outbox, rows)
            rows = []
    if rows:
        inserted += _insert_new(conn, alert_outbox, rows)
    return inserted


def _insert_new(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, skipping a key another transaction stored meanwhile; how many were
    written (on SQLite every one: its write transaction holds the lock since the
    lookup; on PostgreSQL the keys the insert returned, when fewer than given)."""
    written = bulk_write(conn, table, rows, inserted=True)
    return len(rows) if written is None else len(written)


#: Outbox rows (and alert states) built and written at once (see ``_insert_outbox_rows``).
_OUTBOX_CHUNK = 1_000


def _outbox_row(record: OutboxRecord) -> dict[str, Any]:
    content = record.content
    payload: dict[str, Any] = {
        "content": content.model_dump(mode="json"),
        "owner_email": record.destination.owner_email,
    }
    if record.members:
        payload["members"] = list(record.members)
    if record.target is not None:
        payload["target"] = {"channel": record.target.channel, "ts": record.target.ts}
    return {
        "alert_id": content.alert_id,
        "rule_id": content.rule_id,
        "scope": record.scope,
        "subject": record.subject,
        "kind": content.kind,
        "channel": record.destination.channel,
        "payload": payload,
        "status": record.status,
        "attempts": 0,
        "created_at": record.created_at.astimezone(UTC),
        **_NOT_YET,
    }


#: The outbox columns a new row leaves empty until it is claimed, sent or fails.
_NOT_YET = dict.fromkeys(
    ("last_error", "sent_at", "message_ts", "message_channel", "claimed_epoch", "claimed_at")
)


def _outbox(row: Any) -> OutboxAlert:
    payload = row.payload
    target = payload.get("target")
    kind: AlertKind = row.kind
    return OutboxAlert(
        alert_id=row.alert_id,
        rule_id=row.rule_id,
        kind=kind,
        destination=Destination(channel=row.channel or "", owner_email=payload.get("owner_email")),
        content=AlertContent.model_validate(payload["content"]),
        attempts=row.attempts,
        created_at=_must(row.created_at),
        channel_id=row.message_channel,
        target=Sent(channel=target["channel"], ts=target["ts"]) if target else None,
        posted=_posted(row),
    )


def _posted(row: Any) -> Sent | None:
    """A pending row with a message ts: its message is out, its attachment is not."""
    if row.status != "pending" or not row.message_ts or not row.message_channel:
        return None
    return Sent(channel=row.message_channel, ts=row.message_ts)

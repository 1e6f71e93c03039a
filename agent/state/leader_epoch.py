"""Leadership epochs (fencing tokens), leases, and the claims every side effect makes.

A lock alone does not fence: a leader whose lock session dropped, or that was paused
(SIGSTOP, a frozen VM) while a standby took over, may still hold a list of work in
memory. So leadership also lives in the ``leadership`` table, one row per lock name:

- ``epoch`` is strictly increasing. A new leader takes the next one with a single
  compare-and-set (``UPDATE … SET epoch = epoch + 1 WHERE epoch = :seen AND …``), so
  two candidates can never both win the same epoch.
- ``lease_expires_at`` is renewed by the leader's heartbeat. A candidate may take the
  epoch when the lease has expired (a hung or dead leader), or when it holds the
  advisory lock and the previous leader held it too (that session is gone). Times
  are the database's clock on PostgreSQL, so replicas' clocks do not matter.
- Every side effect is *claimed* right before it is made, with one statement that
  only the current epoch, within its lease, can win: ``claim_row`` for a row that
  stands for the side effect (an outbox alert, a task), ``hold`` inside the
  transaction that commits a cursor or records a write, ``claim`` before a CRM write
  batch. On PostgreSQL the statement locks the leadership row ``FOR SHARE``, so a
  takeover waits for a claim in flight and a claim made after a takeover sees the
  new epoch. A failed claim raises ``FencedError``: the job stops at once and the
  agent steps down.

SQLite has one agent per file (the ``flock``), so its epoch is recorded and claims
compare it, but the lease never decides there.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    Interval,
    Table,
    and_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from agent.state.dialect import dialect_of, insert_ignore, read_only
from agent.state.errors import FencedError
from agent.state.schema import UtcDateTime, leadership

__all__ = ["DEFAULT_LEASE_SECONDS", "Fence", "FencedError", "LeaderInfo", "replica_name"]

log = structlog.get_logger("agent.state.leader")

DEFAULT_LEASE_SECONDS = 15.0
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
_L = leadership.c


def replica_name() -> str:
    """This agent as job records and ``/readyz`` name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """Who leads (or last led) on a state database, as the leadership row says."""

    epoch: int
    host: str | None
    pid: int | None
    lock_pid: int | None
    acquired_at: datetime | None
    renewed_at: datetime | None
    lease_expires_at: datetime
    #: Whether the lease has run out (by the database's clock).
    expired: bool

    def describe(self) -> str:
        if self.epoch == 0 or self.host is None:
            return "none yet"
        state = "expired" if self.expired else "until"
        return (
            f"ax-agent pid {self.pid} on {self.host}, epoch {self.epoch}, "
            f"lease {state} {self.lease_expires_at.isoformat(timespec='seconds')}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "host": self.host,
            "pid": self.pid,
            "lock_backend_pid": self.lock_pid,
            "acquired_at": _iso(self.acquired_at),
            "renewed_at": _iso(self.renewed_at),
            "lease_expires_at": _iso(self.lease_expires_at),
            "lease_expired": self.expired,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


class Fence:
    """This agent's epoch and lease on one state database; thread-safe.

    ``epoch`` is None while the agent does not lead. The methods that claim raise
    ``FencedError`` (and forget the epoch) as soon as the database says another
    epoch leads or this one's lease ran out.
    """

    def __init__(
        self,
        engine: Engine,
        name: str = "ax-agent",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        *,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("the lease must be positive")
        self.engine = engine
        self.name = name
        self.lease_seconds = float(lease_seconds)
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self._pg = dialect_of(engine) == "postgresql"
        self._epoch: int | None = None
        self._lock = threading.Lock()
        #: How many times this agent took or lost the leadership.
        self.changes = 0
        #: Called with (leading, epoch) on every change (metrics, health).
        self.on_change: Callable[[bool, int | None], None] = lambda _leading, _epoch: None

    @property
    def replica(self) -> str:
        return f"{self.host}:{self.pid}"

    @property
    def epoch(self) -> int | None:
        with self._lock:
            return self._epoch

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    # -- taking, keeping and giving up ------------------------------------------------

    def current(self) -> LeaderInfo | None:
        """The leadership row (None before any agent led on this database)."""
        with read_only(self.engine) as conn:
            row = conn.execute(
                select(leadership, (_L.lease_expires_at <= self._now()).label("expired")).where(
                    _L.name == self.name
                )
            ).first()
        if row is None:
            return None
        return LeaderInfo(
            epoch=row.epoch,
            host=row.host,
            pid=row.pid,
            lock_pid=row.lock_pid,
            acquired_at=row.acquired_at,
            renewed_at=row.renewed_at,
            lease_expires_at=row.lease_expires_at,
            expired=bool(row.expired),
        )

    def take(self, *, holds_lock: bool, lock_pid: int | None = None, force: bool = False) -> bool:
        """Become the leader with the next epoch, if the rules allow it now.

        Allowed when the lease has expired, or when ``holds_lock`` and the previous
        leader held the lock too (its session is gone, or it would still hold it), or
        always with ``force`` (SQLite's file lock is exclusive by itself).
        """
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(leadership, dialect_of(self.engine)).values(
                    name=self.name, epoch=0, lease_expires_at=_NEVER
                )
            )
            seen: int = conn.execute(select(_L.epoch).where(_L.name == self.name)).scalar_one()
            conditions: list[ColumnElement[bool]] = [_L.name == self.name, _L.epoch == seen]
            if not force:
                allowed = [_L.lease_expires_at <= self._now()]
                if holds_lock:
                    allowed.append(_L.lock_pid.is_not(None))
                conditions.append(or_(*allowed))
            now = self._now()
            stmt = (
                update(leadership)
                .where(*conditions)
                .values(
                    epoch=_L.epoch + 1,
                    host=self.host,
                    pid=self.pid,
                    lock_pid=lock_pid,
                    acquired_at=now,
                    renewed_at=now,
                    lease_expires_at=self._expiry(),
                )
                .returning(_L.epoch)
            )
            epoch = conn.execute(stmt).scalar()
        if epoch is None:
            return False
        self._set(int(epoch))
        log.info("leadership_epoch_taken", epoch=epoch, lease_seconds=self.lease_seconds)
        return True

    def renew(self, *, lock_pid: int | None = None) -> bool:
        """Extend the lease (the heartbeat); False, and no longer leading, if superseded."""
        epoch = self.epoch
        if epoch is None:
            return False
        values: dict[str, Any] = {"renewed_at": self._now(), "lease_expires_at": self._expiry()}
        if lock_pid is not None:
            values["lock_pid"] = lock_pid
        with self.engine.begin() as conn:
            renewed = conn.execute(
                update(leadership).where(_L.name == self.name, _L.epoch == epoch).values(**values)
            ).rowcount
        if renewed != 1:
            self.lose(f"epoch {epoch} was superseded")
            return False
        return True

    def resign(self) -> None:
        """Give the leadership up: end the lease now, so a standby takes over at once."""
        epoch = self.epoch
        if epoch is None:
            return
        self.lose("resigned")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(leadership)
                    .where(_L.name == self.name, _L.epoch == epoch)
                    .values(lease_expires_at=self._now(), lock_pid=None)
                )
        except Exception as exc:  # unreachable database: the lease runs out by itself
            log.warning("leadership_resign_failed", epoch=epoch, error=str(exc))

    def lose(self, reason: str) -> None:
        """Forget the epoch (this agent no longer leads)."""
        with self._lock:
            epoch, self._epoch = self._epoch, None
            if epoch is not None:
                self.changes += 1
        if epoch is not None:
            level = log.info if reason == "resigned" else log.warning
            level("leadership_stepped_down", epoch=epoch, reason=reason)
            self.on_change(False, None)

    def _set(self, epoch: int) -> None:
        with self._lock:
            self._epoch = epoch
            self.changes += 1
        self.on_change(True, epoch)

    # -- claims -------------------------------------------------------------------------

    def claim_row(
        self,
        table: Table,
        where: ColumnElement[bool],
        values: Mapping[str, Any] | None = None,
        *,
        conn: Connection | None = None,
        what: str = "a side effect",
    ) -> bool:
        """Claim the row of ``table`` matching ``where`` for this epoch, right before the
        side effect it stands for; one statement that only the current epoch can win.

        ``table`` needs ``claimed_epoch`` (integer) and ``claimed_at`` (time) columns;
        ``values`` are set in the same statement. True when claimed; False when the row
        is not there or not claimable (``where`` excludes it, or a newer epoch claimed
        it) while this agent still leads. Raises ``FencedError`` when it does not.
        Reusable for any side effect with a row of its own (tasks: the task row).
        """
        epoch = self._need(what)
        claimed = table.c.claimed_epoch
        stmt = (
            update(table)
            .where(
                where,
                or_(claimed.is_(None), claimed <= epoch),
                exists(self._current(epoch)),
            )
            .values(claimed_epoch=epoch, claimed_at=datetime.now(UTC), **dict(values or {}))
        )
        if conn is not None:
            won = conn.execute(stmt).rowcount == 1
            if not won:
                self._verify(conn, epoch, what)
            return won
        with self.engine.begin() as own:
            won = own.execute(stmt).rowcount == 1
            if not won:
                self._verify(own, epoch, what)
        return won

    def hold(self, conn: Connection, what: str = "a commit") -> None:
        """Inside a transaction: confirm this epoch leads and keep a takeover out until
        the transaction ends (the leadership row is locked ``FOR SHARE``)."""
        epoch = self._need(what)
        self._verify(conn, epoch, what)

    def claim(self, what: str = "a side effect") -> None:
        """Confirm, in one statement, that this epoch leads right before ``what``.

        A read: on SQLite it does not wait for the write lock (writers of answers
        must not hold a send up)."""
        epoch = self._need(what)
        with read_only(self.engine) as conn:
            self._verify(conn, epoch, what)

    def _need(self, what: str) -> int:
        epoch = self.epoch
        if epoch is None:
            raise FencedError(f"not the leader: {what} is not made")
        return epoch

    def _verify(self, conn: Connection, epoch: int, what: str) -> None:
        if conn.execute(self._current(epoch)).first() is None:
            self.lose(f"claim for {what} refused")
            raise FencedError(
                f"leadership epoch {epoch} was superseded or its lease ran out: "
                f"{what} is not made, and this agent steps down"
            )

    def _current(self, epoch: int) -> Any:
        conditions: list[ColumnElement[bool]] = [_L.name == self.name, _L.epoch == epoch]
        if self._pg:
            conditions.append(_L.lease_expires_at > self._now())
        return select(literal(1)).where(and_(*conditions)).with_for_update(read=True)

    # -- time -----------------------------------------------------------------------------

    def _now(self) -> ColumnElement[datetime]:
        if self._pg:
            return func.clock_timestamp()
        return literal(datetime.now(UTC), UtcDateTime())

    def _expiry(self) -> ColumnElement[datetime]:
        lease = timedelta(seconds=self.lease_seconds)
        if self._pg:
            return func.clock_timestamp() + bindparam(None, lease, type_=Interval())
        return literal(datetime.now(UTC) + lease, UtcDateTime())

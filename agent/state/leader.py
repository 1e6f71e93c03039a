"""Leadership: at most one agent works on a state database at a time.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a
  dedicated connection that stays open. The lock lives exactly as long as that
  session: if the leader dies or its connection drops, the server releases it and a
  standby's next ``try_acquire`` wins. ``is_leader()`` is the keep-alive check: one
  round trip that confirms the session still holds the lock, and reports a lost
  connection as lost leadership.
- SQLite: an exclusive OS lock (``flock``) on ``<database>.lock`` beside the file,
  holding the owner's pid and host. A second agent on the same file is refused with a
  message naming the file and the holder; SQLite has no standby mode.
- In-memory SQLite: one process by definition, always the leader.

Call ``is_leader()`` before each unit of work and stop when it returns False.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import threading
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import structlog
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from agent.state.dialect import create_state_engine, normalise_url, safe_url, sqlite_path
from agent.state.errors import LeadershipError, StateError

__all__ = [
    "FileLeadership",
    "Leadership",
    "LocalLeadership",
    "PostgresLeadership",
    "leadership_for",
]

log = structlog.get_logger(__name__)


class Leadership(ABC):
    """Who may do the agent's work now. One instance per agent process."""

    #: Whether a refused agent may wait for the leader to go away (PostgreSQL only).
    can_stand_by: bool = False

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    @abstractmethod
    def resource(self) -> str:
        """What is locked, for messages (the database file, or the database URL)."""

    @abstractmethod
    def try_acquire(self) -> bool:
        """Become the leader if nobody is; never waits. True if this agent now leads."""

    @abstractmethod
    def is_leader(self) -> bool:
        """Whether this agent still leads (checks the lock is really still held)."""

    @abstractmethod
    def holder(self) -> str | None:
        """Who holds the leadership (pid, host), if anyone does."""

    @abstractmethod
    def release(self) -> None:
        """Give the leadership up (idempotent)."""

    def acquire(
        self,
        *,
        wait: bool = True,
        poll_seconds: float = 2.0,
        stop: threading.Event | None = None,
    ) -> bool:
        """Lead now, or stand by until the leader goes (when ``wait`` and supported).

        Raises ``LeadershipError`` when another agent leads and this one may not wait.
        Returns False only when ``stop`` is set while standing by.
        """
        if self.try_acquire():
            return True
        if not (wait and self.can_stand_by):
            raise LeadershipError(self.refusal())
        log.info("standing by", resource=self.resource, leader=self.holder())
        stop = stop or threading.Event()
        while not stop.wait(poll_seconds):
            try:
                if self.try_acquire():
                    return True
            except StateError as exc:
                log.warning("leadership check failed", resource=self.resource, error=str(exc))
        return False

    def refusal(self) -> str:
        """Why this agent may not start, and what to do."""
        holder = self.holder() or "another ax-agent"
        return f"{holder} already leads on {self.resource}; stop it or start this one as standby"

    def __enter__(self) -> Leadership:
        self.acquire(wait=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _identity() -> str:
    return f"ax-agent pid {os.getpid()} on {socket.gethostname()}"


class PostgresLeadership(Leadership):
    """An advisory lock on a dedicated PostgreSQL session (key from name and schema)."""

    can_stand_by = True

    #: Seconds without an answer before the server (and we) consider the peer gone.
    KEEPALIVE_SECONDS = 10

    def __init__(self, url: str | URL, name: str = "ax-agent") -> None:
        super().__init__(name)
        self._url = normalise_url(url)
        # Client-side keep-alives and a send timeout: a dead server or network makes
        # is_leader() fail within ~30 s instead of hanging on TCP retransmissions.
        idle = self.KEEPALIVE_SECONDS
        client = {
            "connect_timeout": idle,
            "keepalives": 1,
            "keepalives_idle": idle,
            "keepalives_interval": max(1, idle // 3),
            "keepalives_count": 3,
            "tcp_user_timeout": idle * 3000,
        }
        self._engine: Engine = create_state_engine(
            self._url, poolclass=NullPool, connect_args=client
        )
        self._conn: Connection | None = None
        self._key: int | None = None

    @property
    def resource(self) -> str:
        return safe_url(self._url)

    @property
    def key(self) -> int:
        """The advisory-lock key (after the first ``try_acquire``)."""
        if self._key is None:
            with self._engine.connect() as conn:
                self._key = self._key_for(conn)
        return self._key

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return self.is_leader()
        conn = self._connect()
        try:
            if self._key is None:
                self._key = self._key_for(conn)
            won = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        except DBAPIError as exc:
            conn.close()
            raise StateError(f"leadership check on {self.resource} failed: {exc.orig}") from None
        if not won:
            conn.close()
            return False
        self._conn = conn
        log.info("leadership acquired", resource=self.resource, key=self.key)
        return True

    def is_leader(self) -> bool:
        if self._conn is None:
            return False
        try:
            held = self._conn.execute(_HELD, self._lock_params()).scalar()
        except DBAPIError as exc:
            self._lost(f"connection lost: {exc.orig}")
            return False
        if not held:
            self._lost("lock no longer held")
        return bool(held)

    def holder(self) -> str | None:
        try:
            with self._engine.connect() as conn:
                row = conn.execute(_HOLDER, self._lock_params()).first()
        except DBAPIError:
            return None
        if row is None:
            return None
        return f"{row.application_name or 'a PostgreSQL client'} (backend pid {row.pid})"

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except DBAPIError:
            pass  # a dead session holds no lock any more
        finally:
            conn.close()
        log.info("leadership released", resource=self.resource)

    def dispose(self) -> None:
        """Release and close the dedicated engine."""
        self.release()
        self._engine.dispose()

    def backend_pid(self) -> int | None:
        """The server process of the lock's session (for operators and tests)."""
        if self._conn is None:
            return None
        return int(self._conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    def _connect(self) -> Connection:
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            idle = self.KEEPALIVE_SECONDS
            conn.execute(
                text("SELECT set_config('application_name', :n, false)"), {"n": _identity()}
            )
            # Notice a vanished peer within ~2x KEEPALIVE_SECONDS; never expire the idle
            # session (that would drop the lock while the leader is healthy).
            settings = {
                "tcp_keepalives_idle": idle,
                "tcp_keepalives_interval": max(1, idle // 3),
                "tcp_keepalives_count": 3,
            }
            if _server_version(conn) >= 140000:  # idle_session_timeout is new in 14
                settings["idle_session_timeout"] = 0
            for name, value in settings.items():
                conn.execute(_SET, {"s": name, "v": str(value)})
        except DBAPIError as exc:
            raise StateError(f"cannot reach {self.resource} for leadership: {exc.orig}") from None
        return conn

    def _key_for(self, conn: Connection) -> int:
        schema = conn.execute(text("SELECT current_database() || '.' || current_schema()")).scalar()
        return _lock_key(f"{self.name}:{schema}")

    def _lock_params(self) -> dict[str, int]:
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}

    def _lost(self, why: str) -> None:
        conn, self._conn = self._conn, None
        log.warning("leadership lost", resource=self.resource, reason=why)
        if conn is not None:
            with contextlib.suppress(DBAPIError):  # a dead connection may fail to close
                conn.close()


def _server_version(conn: Connection) -> int:
    return int(conn.execute(text("SELECT current_setting('server_version_num')")).scalar_one())


_SET = text("SELECT set_config(:s, :v, false)")

# pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits).
_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = pg_backend_pid() "
    "AND l.locktype = 'advisory' AND l.classid = :hi AND l.objid = :lo "
    "AND l.objsubid = 1 AND l.granted)"
)
_HOLDER = text(
    "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.classid = :hi AND l.objid = :lo "
    "AND l.objsubid = 1 AND l.granted LIMIT 1"
)


class FileLeadership(Leadership):
    """An exclusive ``flock`` on ``<database>.lock``: one agent per SQLite file."""

    def __init__(self, database: Path, name: str = "ax-agent") -> None:
        super().__init__(name)
        self.database = database
        self.lock_path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    @property
    def resource(self) -> str:
        return str(self.database)

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return self.is_leader()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self._write_owner(fd)
        log.info("leadership acquired", resource=self.resource, lock=str(self.lock_path))
        return True

    def is_leader(self) -> bool:
        if self._fd is None:
            return False
        try:
            same = os.fstat(self._fd).st_ino == os.stat(self.lock_path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the lock file was removed or replaced: another agent could lock it
            log.warning("leadership lost", resource=self.resource, reason="lock file replaced")
            self.release()
        return same

    def holder(self) -> str | None:
        if self._fd is None and not self._held_elsewhere():
            return None  # a pid left in the file by a killed agent is not a holder
        try:
            owner = json.loads(self.lock_path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return None
        if not isinstance(owner, dict) or "pid" not in owner:
            return None
        host, since = owner.get("host", "?"), owner.get("since", "?")
        return f"ax-agent pid {owner['pid']} on {host} since {since}"

    def _held_elsewhere(self) -> bool:
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        log.info("leadership released", resource=self.resource)

    def refusal(self) -> str:
        holder = self.holder() or "another ax-agent (pid not recorded yet)"
        return (
            f"the state database {self.database} is in use by {holder}: only one agent may "
            f"run on a SQLite state file (lock file {self.lock_path}). Stop that agent, or "
            "move the state to PostgreSQL (AX_STATE_URL=postgresql+psycopg://…) to run "
            "standby replicas."
        )

    @staticmethod
    def _write_owner(fd: int) -> None:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        os.fsync(fd)


class LocalLeadership(Leadership):
    """In-memory SQLite: nothing to share, so this process always leads."""

    def __init__(self, name: str = "ax-agent") -> None:
        super().__init__(name)
        self._held = False

    @property
    def resource(self) -> str:
        return "in-memory state"

    def try_acquire(self) -> bool:
        self._held = True
        return True

    def is_leader(self) -> bool:
        return self._held

    def holder(self) -> str | None:
        return _identity() if self._held else None

    def release(self) -> None:
        self._held = False


def leadership_for(url: str | URL, name: str = "ax-agent") -> Leadership:
    """The leadership primitive that fits the state database at ``url``."""
    parsed = normalise_url(url)
    if parsed.drivername.startswith("postgresql"):
        return PostgresLeadership(parsed, name)
    path = sqlite_path(parsed)
    return LocalLeadership(name) if path is None else FileLeadership(path, name)

"""Leadership on PostgreSQL: a session advisory lock on a dedicated connection."""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from agent.state.dialect import agent_identity, create_state_engine, normalise_url, safe_url
from agent.state.errors import StateError
from agent.state.leader_base import Leadership, identity, lock_key

__all__ = ["PostgresLeadership"]

log = structlog.get_logger("agent.state.leader")


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

    def session_pid(self) -> int | None:
        try:
            return self.backend_pid()
        except DBAPIError:
            return None

    def terminate_holder(self, host: str, pid: int, lock_pid: int) -> bool:
        """End the sessions of the agent ``pid`` on ``host``, a leader whose lease ran
        out, when its lock session ``lock_pid`` still holds this lock
        (``pg_terminate_backend``).

        Only that leader's: the lock may be held by another candidate by now (one that
        won it after the leader's session went, and is about to take the epoch), whose
        sessions must not be ended. Needs a superuser, the ``pg_signal_backend`` role or
        the holder's own role; without it the server refuses and False is returned (the
        lease decides).
        """
        name = agent_identity(pid, host)
        params = {**self._lock_params(), "lock_pid": lock_pid, "name": name}
        ended = self._terminate(_TERMINATE, params, "leader_session_terminate_refused", name)
        if ended:
            log.warning("leader_session_terminated", resource=self.resource, agent=name)
        return ended > 0

    def end_sessions_of(self, host: str, pid: int) -> bool:
        """End the sessions named after the agent ``pid`` on ``host`` (``pg_terminate_backend``).

        A leader paused (SIGSTOP, a frozen VM) inside a transaction keeps its rows locked:
        the input version every write of an input moves, and the leadership row its
        claims hold ``FOR SHARE``. Once its lock session is gone nothing else ends that
        transaction before ``idle_in_transaction_session_timeout``, and until then every
        replica's writes wait for it (a takeover, the webhook's answers). Needs the
        rights ``terminate_holder`` needs; without them False (the server's timeout ends it).
        """
        name = agent_identity(pid, host)
        ended = self._terminate(
            _END_AGENT, {"name": name}, "superseded_leader_sessions_not_ended", name
        )
        if ended:
            log.warning("superseded_leader_sessions_ended", agent=name, sessions=ended)
        return ended > 0

    def _terminate(self, stmt: TextClause, params: dict[str, Any], refused: str, name: str) -> int:
        """Run a ``pg_terminate_backend`` query; how many sessions it ended (0 when the
        server refused, logged as ``refused``)."""
        try:
            with self._engine.connect() as conn:
                ended: list[bool] = list(conn.execute(stmt, params).scalars())
                conn.commit()
        except DBAPIError as exc:
            log.warning(refused, agent=name, error=str(exc.orig))
            return 0
        return sum(ended)

    def _connect(self) -> Connection:
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            idle = self.KEEPALIVE_SECONDS
            conn.execute(
                text("SELECT set_config('application_name', :n, false)"), {"n": identity()}
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
        return lock_key(f"{self.name}:{schema}")

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
# The sessions of the leader whose lease ran out (by its name), when its lock session
# still holds the lock: a paused leader's open transactions must not block the new
# leader, and a candidate that holds the lock now is not that leader.
_TERMINATE = text(
    "WITH holder AS (SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.classid = :hi AND l.objid = :lo "
    "AND l.objsubid = 1 AND l.granted AND l.pid = :lock_pid "
    "AND a.application_name = left(:name, 63)) "
    "SELECT pg_terminate_backend(s.pid) FROM pg_stat_activity s "
    "WHERE s.pid <> pg_backend_pid() AND EXISTS (SELECT 1 FROM holder) "
    "AND (s.pid IN (SELECT pid FROM holder) "
    "OR (s.datname = current_database() AND s.application_name = left(:name, 63)))"
)
# Every session of one agent (application names are cut at 63 bytes by the server).
_END_AGENT = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
    "AND datname = current_database() AND application_name = left(:name, 63)"
)
_HOLDER = text(
    "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.classid = :hi AND l.objid = :lo "
    "AND l.objsubid = 1 AND l.granted LIMIT 1"
)

"""Everything that differs between SQLite and PostgreSQL, in one place.

Engines are created here (SQLite tuned for one writer and crash safety, PostgreSQL
through psycopg 3), URLs are normalised and checked here, the two dialects'
``INSERT … ON CONFLICT`` constructs are chosen here, and so is the bulk path:
``executemany`` on SQLite, ``COPY`` into a temporary table then one
``INSERT … SELECT … ON CONFLICT`` on PostgreSQL (about three times faster than
row-by-row parameters for the million-row loads the store sees), and so is merging
a JSON object on conflict (``json_patch`` / ``jsonb ||``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

import structlog
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert

from agent.state.errors import StateError
from agent.state.jsontext import dumps, loads
from agent.state.schema import UtcDateTime
from agent.state.versioning import move_version_by_statement

_log = structlog.get_logger(__name__)

__all__ = [
    "DEFAULT_URL",
    "Dialect",
    "bound_value",
    "bulk_write",
    "bulk_write_bound",
    "create_state_engine",
    "dialect_of",
    "insert_ignore",
    "let_waiting_writers_in",
    "normalise_url",
    "one_of",
    "plain_rows",
    "read_only",
    "row_binder",
    "safe_url",
    "sqlite_path",
    "upsert",
    "value_binder",
]

DEFAULT_URL = "sqlite:///ax-state.db"

Dialect = Literal["sqlite", "postgresql"]

#: How long a SQLite writer waits for another connection's write lock (seconds).
SQLITE_BUSY_TIMEOUT = 30.0

#: The page cache of each SQLite connection, at most (KiB; allocated as pages are used).
#: Every pooled connection keeps its cache between transactions: a cycle's reads and
#: small writes need little, and at 50,000 accounts a larger cache held by each
#: connection the process has used was some 75 MB of the first cycle's peak.
SQLITE_CACHE_KIB = 8_192

#: The page cache of a bulk write (``bulk_cache``). A first ingest of a million
#: answers updates its indexes all over (instants and emails arrive in no order): with
#: a small cache every insert past the first few thousand reads index pages back, and
#: the ingest took two to three times as long.
SQLITE_BULK_CACHE_KIB = 65_536

#: Marks (in the pooled connection's ``info``) a connection whose cache was raised.
_BULK_CACHE = "ax_bulk_cache"

#: Execution option: a read-only SQLite transaction begins DEFERRED, not IMMEDIATE.
READ_ONLY = "ax_read_only"


def read_only(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite its transactions never take (nor wait for)
    the write lock, which every other transaction takes as it begins."""
    return engine.connect().execution_options(**{READ_ONLY: True})


_PG_DRIVERS = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}


def normalise_url(url: str | URL) -> URL:
    """Parse ``url``; plain ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StateError(f"state URL is not a database URL: {exc}") from None
    if parsed.drivername in _PG_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        return parsed
    raise StateError(
        f"state URL {safe_url(parsed)} is not supported: use sqlite:///PATH "
        "or postgresql+psycopg://USER@HOST/DB"
    )


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, fit for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def dialect_of(bind: Engine | Connection) -> Dialect:
    name = bind.dialect.name
    if name not in ("sqlite", "postgresql"):
        raise StateError(f"unsupported state database dialect {name}")
    return "sqlite" if name == "sqlite" else "postgresql"


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory SQLite."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).resolve()


def create_state_engine(url: str | URL, *, echo: bool = False, **pg_options: Any) -> Engine:
    """An engine for the state store, configured for its dialect.

    ``pg_options`` go to ``create_engine`` for PostgreSQL (e.g. ``poolclass``).
    """
    parsed = normalise_url(url)
    if parsed.drivername.startswith("sqlite"):
        return _sqlite_engine(parsed, echo=echo)
    # Every session names its agent (as the leader's lock session does), so a standby
    # replacing a hung leader can end all of that leader's sessions, not only the
    # lock's; the server ends a transaction left idle by a paused agent.
    connect = {"connect_timeout": 10, "application_name": agent_identity()}
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "connect_args": connect,
        "json_serializer": dumps,
        "json_deserializer": loads,
    }
    options.update(pg_options)
    engine = create_engine(parsed, echo=echo, **options)
    event.listen(engine, "connect", _pg_on_connect)
    return engine


#: A transaction left open this long by a stopped (paused, hung) agent is ended by the
#: server, so it cannot hold the rows a new leader needs for longer.
PG_IDLE_IN_TRANSACTION_SECONDS = 60


def agent_identity(pid: int | None = None, host: str | None = None) -> str:
    """How an agent names its database sessions: ``ax-agent pid <pid> on <host>`` (this
    agent's by default)."""
    return f"ax-agent pid {pid or os.getpid()} on {host or socket.gethostname()}"


def _pg_on_connect(dbapi_conn: Any, _record: Any) -> None:
    with dbapi_conn.cursor() as cursor:
        cursor.execute(
            f"SET idle_in_transaction_session_timeout = {PG_IDLE_IN_TRANSACTION_SECONDS * 1000}"
        )
    dbapi_conn.commit()


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    path = sqlite_path(url)
    if path is not None and not path.parent.is_dir():
        raise StateError(f"state database folder {path.parent} does not exist")
    # LIFO: a thread's transactions one after another take the connection it just gave
    # back, whose page cache holds what they read (a bulk write's pieces above all),
    # rather than going round every idle connection, each with a cache of its own.
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT},
        pool_use_lifo=True,
        json_serializer=dumps,
        json_deserializer=loads,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    event.listen(engine, "checkin", _sqlite_on_checkin)
    move_version_by_statement(engine)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control from the sqlite3 module so BEGIN is ours (see below).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        # WAL: readers never block the writer; FULL: a commit survives power loss;
        # busy_timeout: a second connection waits for the write lock instead of failing;
        # cache_size: a million-row load touches its indexes all over (response ids and
        # instants arrive in no order): with SQLite's 2 MB default every insert past the
        # first few thousand reads its index pages back, which made a first ingest of
        # 1,000,000 answers take 17 s in the insert alone instead of 10 s.
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            f"busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}",
            f"cache_size=-{SQLITE_CACHE_KIB}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _sqlite_on_checkin(dbapi_conn: Any, record: Any) -> None:
    # A connection that held a bulk write's cache, back in the pool after the bulk write,
    # gives its pages back: lowering ``cache_size`` only stops the cache growing, it
    # frees nothing. (Between the pieces of a bulk write the cache is kept.)
    if record is None or not record.info.get(_BULK_CACHE) or _IN_BULK.get():
        return
    del record.info[_BULK_CACHE]
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA shrink_memory")
    finally:
        cursor.close()


#: Whether this thread runs a bulk write (``bulk_cache``).
_IN_BULK: ContextVar[bool] = ContextVar("ax_in_bulk", default=False)


@contextmanager
def bulk_cache(conn: Connection | None = None) -> Iterator[None]:
    """A large page cache on SQLite for the bulk write this block runs (nothing on
    PostgreSQL): for ``conn``, and for every connection of this thread that begins a
    transaction inside the block (the pieces of a write committed in pieces).

    Each such connection keeps the cache while the block runs, and frees its pages as
    it goes back to the pool once the block is over (``conn``: after its transaction).
    Inside another bulk write's block this adds nothing.
    """
    if _IN_BULK.get():
        yield
        return
    token = _IN_BULK.set(True)
    try:
        if conn is not None and dialect_of(conn) == "sqlite":
            _raise_cache(conn)
        yield
    finally:
        _IN_BULK.reset(token)


def _raise_cache(conn: Connection) -> None:
    if not conn.info.get(_BULK_CACHE):
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
        conn.info[_BULK_CACHE] = True


def _sqlite_on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that read first
    # and then writes can fail with "database is locked" without waiting.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN DEFERRED")
        return
    with _WAITING:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    if _IN_BULK.get():  # a piece of a bulk write
        _raise_cache(conn)


class _Waiting:
    """How many threads of this process wait for a SQLite write lock (in ``BEGIN
    IMMEDIATE``): ``let_waiting_writers_in`` lets them in between the pieces of a large
    write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self.count -= 1


_WAITING = _Waiting()

#: How long a large write pauses between two pieces, at most, for the writers waiting.
WRITERS_PAUSE = 0.25


def let_waiting_writers_in(pause: float | None = None) -> None:
    """Between two transactions of a large write: wait until the threads of this process
    that wait for SQLite's write lock have it (``pause`` seconds at most, by default
    ``WRITERS_PAUSE``).

    A waiting connection does not queue: SQLite's busy handler sleeps and tries again,
    up to 100 ms apart, so a writer that begins its next transaction as soon as it
    commits the last one takes the lock again before anyone else wakes, piece after
    piece (a webhook's answer waited 2.7 s behind the pieces of one mirror replacement).
    Nobody waiting (PostgreSQL, whose writers wait in line): no pause.
    """
    deadline = time.monotonic() + (WRITERS_PAUSE if pause is None else pause)
    while _WAITING.count and time.monotonic() < deadline:
        time.sleep(0.002)


def _insert(table: Table, dialect: Dialect) -> sqlite.Insert | postgresql.Insert:
    return sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)


def insert_ignore(table: Table, dialect: Dialect) -> Insert:
    """``INSERT … ON CONFLICT (primary key) DO NOTHING``."""
    return _insert(table, dialect).on_conflict_do_nothing(
        index_elements=[c.name for c in table.primary_key.columns]
    )


def upsert(
    table: Table,
    dialect: Dialect,
    update: Sequence[str],
    overrides: Mapping[str, Any] | None = None,
) -> Insert:
    """``INSERT … ON CONFLICT (primary key) DO UPDATE`` setting ``update`` from the new row.

    ``overrides`` replaces the value of some updated columns with an expression
    (for example ``attempts + 1``).
    """
    stmt = _insert(table, dialect)
    values: dict[str, Any] = {name: stmt.excluded[name] for name in update}
    values.update(overrides or {})
    return stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns], set_=values
    )


def one_of(
    column: ColumnElement[str], values: Sequence[str], dialect: Dialect
) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``= ANY(array)``: one parameter, not thousands."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String())))
    return column.in_(list(values))


def bulk_write(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    update: Sequence[str] = (),
    *,
    inserted: bool = False,
) -> list[tuple[Any, ...]] | None:
    """Insert ``rows`` (distinct primary keys); on a key conflict update ``update`` or skip.

    Every row carries every column of ``table``. Values are converted exactly as
    SQLAlchemy would bind them, without its per-row statement machinery. ``inserted``:
    as ``bulk_write_bound`` says (the keys written, when fewer than given).
    """
    if not rows:
        return None
    names = [c.name for c in table.columns]
    take = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    bind = row_binder(conn, table)
    values = [bind(take(row)) for row in rows]
    return bulk_write_bound(conn, table, values, update=update, inserted=inserted)


def row_binder(conn: Connection, table: Table) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function taking one row of ``table`` as a tuple in column order to the form
    ``bulk_write_bound`` takes (each value as ``bound_value`` gives it); only the
    columns that need a conversion are touched (on SQLite: instants, JSON, booleans)."""
    special = [
        (i, fn) for i, fn in enumerate(_converters(table, conn, _pick(conn))) if fn is not _same
    ]
    if not special:
        return _same

    def bind(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i, fn in special:
            values[i] = fn(values[i])
        return tuple(values)

    return bind


def bound_value(conn: Connection, column: Column[Any], value: Any) -> Any:
    """``value`` of ``column`` as ``bulk_write_bound`` takes it on this connection."""
    return value_binder(conn, column)(value)


def value_binder(conn: Connection, column: Column[Any]) -> Callable[[Any], Any]:
    """The function ``bound_value`` applies for ``column`` on this connection, for a
    caller building the rows of a large write itself."""
    return _pick(conn)(column, conn) or _same


def bulk_write_bound(
    conn: Connection,
    table: Table,
    values: Sequence[tuple[Any, ...]],
    *,
    update: Sequence[str] = (),
    merge_json: Sequence[str] = (),
    latest: Sequence[str] = (),
    inserted: bool = False,
) -> list[tuple[Any, ...]] | None:
    """Insert rows given as tuples in column order, each value already as ``bound_value``
    gives it (JSON as text): no conversion per value, for the largest writes.

    On a key conflict: ``update`` columns take the new row's value, ``merge_json``
    objects take the new row's keys and keep their others (SQLite ``json_patch``,
    PostgreSQL ``jsonb ||``; each key's value replaced whole, so use arrays or scalars
    there, never objects or a bare null), ``latest`` instants keep the later one.
    Nothing to set: the row is skipped.

    ``inserted`` (PostgreSQL): returns the primary keys of the rows this statement
    wrote, when fewer than given (a concurrent transaction wrote the others' keys
    since the caller looked); None otherwise, and always on SQLite, whose write
    transactions take the write lock at their start (nobody writes meanwhile).
    """
    if not values:
        return None
    quote = conn.dialect.identifier_preparer.quote
    dialect = dialect_of(conn)
    target = quote(table.name)
    columns = ", ".join(quote(c.name) for c in table.columns)
    keys = ", ".join(quote(c.name) for c in table.primary_key.columns)
    sets = [f"{quote(n)} = excluded.{quote(n)}" for n in update]
    sets += [f"{quote(n)} = {_json_merged(dialect, target, quote(n))}" for n in merge_json]
    later = "max" if dialect == "sqlite" else "GREATEST"
    sets += [f"{quote(n)} = {later}({target}.{quote(n)}, excluded.{quote(n)})" for n in latest]
    conflict = f"ON CONFLICT ({keys}) " + (
        f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
    )
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in table.columns)
        sql = f"INSERT INTO {target} ({columns}) VALUES ({marks}) {conflict}"  # noqa: S608  # our own table names, quoted
        conn.exec_driver_sql(sql, values)
        return None
    returning = f" RETURNING {keys}" if inserted else ""
    written = _copy_write(conn, table, values, columns, conflict, returning=returning)
    _STATISTICS.wrote(conn, table, len(values))
    return written


#: Rows a table takes through the bulk path before PostgreSQL's statistics of it are
#: brought up to date (``_Statistics``).
ANALYZE_AFTER_ROWS = 10_000
#: How long an analysis waits for its lock (a VACUUM or another ANALYZE of the table
#: holds it) before it is left to a later write: a write never waits behind one.
ANALYZE_LOCK_WAIT = "1s"


class _Statistics:
    """ANALYZE after bulk loads, as PostgreSQL's documentation asks ("Populating a
    Database"): a table is analyzed in the writing transaction once the bulk path has
    written at least ``ANALYZE_AFTER_ROWS`` rows to it and at least as many as it held
    at its last analysis, so its statistics are never off by more than a factor of two
    (a first ingest of a million answers: about seven analyses).

    The planner estimates from those statistics. Without them (autovacuum off, or not
    yet round) a first ingest's key lookups (``source = ? AND response_id = ANY(2,000
    ids)``) were planned for a table of a few rows: every row of the source read, each
    checked against the 2,000 ids, for every piece, so an ingest slowed down with
    every piece (a lookup took 5 s at 134,000 rows). Counted per process, per
    database and table; a table's size at its last analysis is read from ``pg_class``
    the first time. An analysis that cannot have its lock within ``ANALYZE_LOCK_WAIT``
    is rolled back to a savepoint, the write goes on, and a later write tries again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: (database, table) -> (rows written since the last analysis, rows it held then)
        self._tables: dict[tuple[str, str], tuple[int, float | None]] = {}

    def wrote(self, conn: Connection, table: Table, rows: int) -> None:
        key = (str(conn.engine.url), table.name)
        with self._lock:
            since, held = self._tables.get(key, (0, None))
            since += rows
            self._tables[key] = (since, held)
        if since < ANALYZE_AFTER_ROWS:
            return
        name = conn.dialect.identifier_preparer.quote(table.name)
        if held is None:
            held = self._held(conn, name)
        if since < held:
            with self._lock:
                self._tables[key] = (self._tables[key][0], held)
            return
        if not _analyzed(conn, name):
            return
        held = self._held(conn, name)
        with self._lock:
            self._tables[key] = (self._tables[key][0] - since, held)

    @staticmethod
    def _held(conn: Connection, name: str) -> float:
        """The table's rows at its last analysis (0 when never analyzed)."""
        found = conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(name)s)", {"name": name}
        ).scalar()
        return max(float(found or 0), 0.0)


_STATISTICS = _Statistics()


def _analyzed(conn: Connection, name: str) -> bool:
    """ANALYZE the table inside a savepoint of the caller's transaction, waiting at most
    ``ANALYZE_LOCK_WAIT`` for its lock; False (nothing changed) when it could not."""
    waited = conn.exec_driver_sql("SHOW lock_timeout").scalar()
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                "SELECT set_config('lock_timeout', %(wait)s, true)", {"wait": ANALYZE_LOCK_WAIT}
            )
            conn.exec_driver_sql(f"ANALYZE {name}")
            # the setting holds to the transaction's end: the caller's own, back
            conn.exec_driver_sql(
                "SELECT set_config('lock_timeout', %(wait)s, true)", {"wait": waited}
            )
    except OperationalError as exc:  # lock_not_available: a VACUUM or ANALYZE holds it
        _log.info("statistics_deferred", table=name, reason=str(exc.orig).splitlines()[0])
        return False
    return True


def _json_merged(dialect: Dialect, target: str, column: str) -> str:
    if dialect == "sqlite":
        return f"json_patch({target}.{column}, excluded.{column})"
    return f"({target}.{column}::jsonb || excluded.{column}::jsonb)::json"


def _copy_write(
    conn: Connection,
    table: Table,
    values: Sequence[tuple[Any, ...]],
    columns: str,
    conflict: str,
    *,
    returning: str = "",
) -> list[tuple[Any, ...]] | None:
    """With ``returning``: what the insert returned, when it wrote fewer rows than given."""
    quote = conn.dialect.identifier_preparer.quote
    target, staging = quote(table.name), quote(f"ax_load_{table.name}")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {target}) ON COMMIT DROP"
    )
    raw = conn.connection.driver_connection  # psycopg, inside this same transaction
    with raw.cursor() as cursor, cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in values:
            copy.write_row(row)
    result = conn.exec_driver_sql(
        f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging} {conflict}{returning}"  # noqa: S608  # our own table names, quoted
    )
    short = bool(returning) and result.rowcount < len(values)
    written = [tuple(row) for row in result] if short else None
    result.close()
    conn.exec_driver_sql(f"TRUNCATE {staging}")
    return written


_Convert = Callable[[Any], Any]


def _converters(
    table: Table, conn: Connection, pick: Callable[[Column[Any], Connection], _Convert | None]
) -> list[_Convert]:
    converters = []
    for column in table.columns:
        convert = pick(column, conn) or _same
        converters.append(_repeated(convert) if isinstance(column.type, JSON) else convert)
    return converters


def _repeated(convert: _Convert) -> _Convert:
    """``convert`` that serialises a value shared by consecutive rows once (the rows
    hold it, so the same object is the same value for the whole write)."""
    last: list[Any] = [_same, None]  # the last value (never a row's) and its conversion

    def converted(value: Any) -> Any:
        if value is not last[0]:
            last[:] = [value, convert(value)]
        return last[1]

    return converted


def _pick(conn: Connection) -> Callable[[Column[Any], Connection], _Convert | None]:
    return _bound if dialect_of(conn) == "sqlite" else _copyable


def _bound(column: Column[Any], conn: Connection) -> _Convert | None:
    """SQLAlchemy's own bind processor for the column on this dialect (None: as is);
    for ``UtcDateTime`` the same text from one C call (``_sqlite_stamp``)."""
    if isinstance(column.type, UtcDateTime):
        return _sqlite_stamp
    kind = column.type.dialect_impl(conn.dialect)
    processor: _Convert | None = kind.bind_processor(conn.dialect)
    return processor


def _copyable(column: Column[Any], conn: Connection) -> _Convert | None:
    """What COPY takes: UTC instants and JSON text (psycopg adapts the rest)."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return lambda value: kind.process_bind_param(value, conn.dialect)
    if isinstance(kind, JSON):
        return dumps
    return None


def _same(value: Any) -> Any:
    return value


def plain_rows(
    conn: Connection, stmt: Select[Any], chunk: int = 10_000
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``stmt`` as plain tuples, each value as its column's type reads it.

    Read straight from the driver's cursor: SQLAlchemy's per-row work (a ``Row`` and,
    on SQLite, a regular expression per timestamp) cost more than the query itself
    for the million-row reads of a full computation. Instants come back aware, in UTC,
    JSON decoded and booleans as ``bool``, on both dialects, as through SQLAlchemy.
    """
    result = conn.execute(stmt)
    try:
        readers = [_reader(column.type, dialect_of(conn)) for column in stmt.selected_columns]
        convert = [(i, fn) for i, fn in enumerate(readers) if fn is not None]
        cursor = result.cursor
        while rows := cursor.fetchmany(chunk):
            if not convert:
                yield from map(tuple, rows)
                continue
            for row in rows:
                values = list(row)
                for i, fn in convert:
                    value = values[i]
                    if value is not None:
                        values[i] = fn(value)
                yield tuple(values)
    finally:
        result.close()


def _reader(kind: Any, dialect: Dialect) -> _Convert | None:
    if isinstance(kind, UtcDateTime):
        return _sqlite_instant if dialect == "sqlite" else _utc
    if isinstance(kind, JSON):
        return loads if dialect == "sqlite" else None
    if isinstance(kind, Boolean):
        return bool if dialect == "sqlite" else None
    return None


def _sqlite_stamp(value: datetime | None) -> str | None:
    """An instant as SQLite holds it (``UtcDateTime``): UTC, no offset, always six
    fractional digits; the very text SQLAlchemy's SQLite ``DATETIME`` writes for it (a
    test compares the two), a naive value taken as UTC."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is None:
        return value.isoformat(" ", "microseconds")
    if zone is not UTC:  # (in UTC already, the usual case: no conversion to make)
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without "+00:00"


def _sqlite_instant(value: str) -> datetime:
    """SQLite holds an instant as UTC text without an offset (``UtcDateTime``)."""
    try:
        return datetime.fromisoformat(value + "+00:00")  # one call for the usual case
    except ValueError:  # an offset after all: read it, then in UTC
        return _utc(datetime.fromisoformat(value))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

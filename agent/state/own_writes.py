"""Which moves of the input version a thread's own transactions made.

The input version (``agent.state.ops_settled``) says how far the inputs moved, not who
moved them. A whole cycle that wrote only the confirmations of its own decisions may
record itself settled as of the state after those writes (``agent.sync.settled``),
but only when nobody else wrote an input meanwhile: a webhook answer, a silence, a
closed loop, another process.

While a thread is watched, each of its writing transactions reads the version when it
begins and again just before it commits. From its start the transaction owns the
counter: SQLite's ``BEGIN IMMEDIATE`` holds the write lock, and on PostgreSQL the
first read locks the counter row (``FOR UPDATE``), which its first versioned write
would lock anyway. So each pair is exactly that transaction's own move, and the
version went through the thread's writes alone when the pairs chain from where the
watch looked first to where it looks last. Read-only transactions are not watched.
A thread working for a watched one (a delivery lane claiming and recording its
posts) joins its watch through ``carry_watch``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, event

from agent.state.dialect import READ_ONLY, Dialect

__all__ = ["OwnWrites", "WriteWatch", "carry_watch"]

_READ = "SELECT version FROM input_versions WHERE id = 1"
_READ_LOCKING = "SELECT version FROM input_versions WHERE id = 1 FOR UPDATE"

#: Where a watched transaction keeps the version it began at (``Connection.info``).
_BEGAN = "ax_input_version_at_begin"


class WriteWatch:
    """The input version's moves by one thread's transactions, in commit order."""

    def __init__(self) -> None:
        self.moves: list[tuple[int, int]] = []

    def mark(self) -> int:
        """Where the moves stand now (for ``only_own``)."""
        return len(self.moves)

    def only_own(self, start: int, end: int, since: int = 0) -> bool:
        """Whether the version went from ``start`` to ``end`` through the moves after
        ``since`` alone (no other writer moved it in between)."""
        at = start
        # commit order: each watched transaction held the counter from begin to commit
        for before, after in sorted(self.moves[since:]):
            if before != at:
                return False
            at = after
        return at == end


class OwnWrites:
    """Watches threads' writing transactions on one engine (see the module)."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self._read = _READ_LOCKING if dialect == "postgresql" else _READ
        self._local = threading.local()
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        _WATCHERS[engine] = self

    def watch(self) -> WriteWatch:
        """Start watching the calling thread (a watch already running is replaced)."""
        watch = WriteWatch()
        self._local.watch = watch
        return watch

    def stop(self) -> None:
        """Stop watching the calling thread."""
        self._local.watch = None

    def _watch(self) -> WriteWatch | None:
        watch: WriteWatch | None = getattr(self._local, "watch", None)
        return watch

    def _begin(self, conn: Connection) -> None:
        if self._watch() is None or conn.get_execution_options().get(READ_ONLY):
            return
        conn.info[_BEGAN] = self._version(conn)

    def _commit(self, conn: Connection) -> None:
        began: int | None = conn.info.pop(_BEGAN, None)
        watch = self._watch()
        if began is None or watch is None:
            return
        now = self._version(conn)
        if now != began:
            watch.moves.append((began, now))

    def _rollback(self, conn: Connection) -> None:
        conn.info.pop(_BEGAN, None)

    def _version(self, conn: Connection) -> int:
        value: Any = conn.exec_driver_sql(self._read).scalar()
        return int(value or 0)


_WATCHERS: weakref.WeakKeyDictionary[Engine, OwnWrites] = weakref.WeakKeyDictionary()


def carry_watch(engine: Engine) -> Callable[[], None]:
    """A function that makes the thread calling it part of the calling thread's watch
    on ``engine`` (none: it does nothing), e.g. a thread pool's ``initializer``."""
    own = _WATCHERS.get(engine)
    watch = own._watch() if own is not None else None
    if own is None or watch is None:
        return lambda: None

    def join() -> None:
        own._local.watch = watch

    return join

"""Probes of the state database's write transactions, for tests of large writes.

``probe_between_writes`` lets another SQLite connection try to take the write lock,
without waiting, whenever the store begins a write transaction (before that
transaction takes the lock itself): what it finds already written and whether it got
the lock. A write made in one transaction is never seen part-way; a write committed
in pieces is, and the other writer gets in between. ``count_commits`` counts the
committed write transactions (both dialects).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, event

from agent.state.dialect import READ_ONLY
from agent.state.store import StateStore


@dataclass(frozen=True, slots=True)
class Probe:
    """What another connection saw when a write transaction began."""

    #: The answer of the probe's query (how many rows of the write are committed).
    found: int
    #: Whether it took SQLite's write lock at once.
    wrote: bool


@contextmanager
def probe_between_writes(store: StateStore, count_sql: str) -> Iterator[list[Probe]]:
    """Each write transaction's begin on ``store`` (SQLite): another connection runs
    ``count_sql`` and tries ``BEGIN IMMEDIATE`` with no busy timeout."""
    path = store.path
    assert path is not None, "a SQLite store"
    probes: list[Probe] = []

    def probe(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        if statement != "BEGIN IMMEDIATE":  # a write transaction, about to take the lock
            return
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            found = int(other.execute(count_sql).fetchall()[0][0])
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                wrote = True
            except sqlite3.OperationalError:  # database is locked
                wrote = False
        finally:
            other.close()
        probes.append(Probe(found, wrote))

    event.listen(store.engine, "before_cursor_execute", probe)
    try:
        yield probes
    finally:
        event.remove(store.engine, "before_cursor_execute", probe)


@contextmanager
def count_commits(store: StateStore) -> Iterator[list[int]]:
    """``[n]``: the write transactions committed on ``store`` meanwhile."""
    counted = [0]

    def commit(conn: Connection) -> None:
        if not conn.get_execution_options().get(READ_ONLY):
            counted[0] += 1

    event.listen(store.engine, "commit", commit)
    try:
        yield counted
    finally:
        event.remove(store.engine, "commit", commit)


def written_part_way(probes: list[Probe], total: int) -> list[Probe]:
    """The probes that found part of a write of ``total`` rows committed."""
    return [p for p in probes if 0 < p.found < total]


def crash_on_second_call(write: Callable[..., Any]) -> Callable[..., Any]:
    """``write`` that raises ``KeyboardInterrupt`` (as abrupt as it gets inside the
    process) from its second call on: a large write interrupted in its second piece."""
    calls: list[int] = []

    def crashing(*args: Any, **kwargs: Any) -> Any:
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return write(*args, **kwargs)

    return crashing

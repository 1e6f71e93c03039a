"""A large write committed in pieces lets the writers waiting for SQLite's write lock in
between two pieces: a waiting connection polls, so without that pause the writer takes
the lock again, piece after piece, before anyone else wakes."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import Connection, event

from agent.core.models import Account
from agent.state import dialect
from agent.state.pieces import PIECE_ROWS
from agent.state.store import StateStore

#: Three pieces, the last a short one.
MANY = 2 * PIECE_ROWS + 7


def test_a_writer_waiting_during_a_piece_writes_before_the_next_piece(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialect, "WRITERS_PAUSE", 60.0)  # however slow the machine
    accounts = [Account(f"A{i:05d}", f"Account {i}") for i in range(MANY)]
    with StateStore.open(sqlite_url) as store:
        path = store.path
        assert path is not None
        seen_in_piece: list[str | None] = []
        other = threading.Thread(target=lambda: store.set_cursor("webhook", "answers", "in"))

        def began(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
            """A piece holds the write lock: what has the other writer committed?"""
            if statement != "BEGIN IMMEDIATE" or threading.current_thread() is other:
                return
            with sqlite3.connect(path) as reader:
                row = reader.execute(
                    "SELECT value FROM cursors WHERE source = 'webhook'"
                ).fetchone()
            seen_in_piece.append(None if row is None else row[0])
            if len(seen_in_piece) == 2:  # in the second piece, another writer starts waiting
                # Counted per process: a thread an earlier test left waiting counts too.
                before = dialect._WAITING.count
                other.start()
                deadline = time.monotonic() + 30
                while dialect._WAITING.count == before and time.monotonic() < deadline:
                    time.sleep(0.001)
                assert dialect._WAITING.count == before + 1

        event.listen(store.engine, "after_cursor_execute", began)
        try:
            assert store.upsert_records("files", "account", accounts) == MANY
        finally:
            event.remove(store.engine, "after_cursor_execute", began)
        other.join()
        # The waiting writer went between the second and the third piece.
        assert seen_in_piece == [None, None, "in"]

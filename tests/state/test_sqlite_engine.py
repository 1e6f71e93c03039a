"""SQLite is tuned for one writer, concurrent readers and crash safety."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import text

from agent.core.models import Response
from agent.state.store import StateStore


def test_sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys(sqlite_url: str) -> None:
    with StateStore.open(sqlite_url) as store, store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_a_reader_is_not_blocked_by_an_open_write_transaction(sqlite_url: str) -> None:
    with StateStore.open(sqlite_url) as writer, StateStore.open(sqlite_url) as reader:
        writer.set_cursor("files", "responses", "1")
        with writer.transaction() as tx:
            tx.set_cursor("files", "responses", "2")  # holds the write lock, uncommitted
            assert reader.get_cursor("files", "responses") == "1"
        assert reader.get_cursor("files", "responses") == "2"


def test_concurrent_writers_wait_for_each_other_instead_of_failing(sqlite_url: str) -> None:
    stores = [StateStore.open(sqlite_url) for _ in range(3)]
    errors: list[BaseException] = []

    def work(n: int, store: StateStore) -> None:
        try:
            for i in range(30):
                with store.transaction() as tx:
                    seen = tx.get_cursor("w", "count")
                    tx.set_cursor("w", "count", str(int(seen or 0) + 1))
                store.add_responses(
                    [Response(f"{n}-{i}", None, 9, datetime(2024, 1, 1, tzinfo=UTC), source="t")]
                )
        except BaseException as exc:  # surfaced below: any error fails the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert stores[0].get_cursor("w", "count") == "90"  # no lost update
        assert stores[0].count_responses() == 90
    finally:
        for store in stores:
            store.close()

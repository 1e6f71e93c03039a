"""SQLite is tuned for one writer, concurrent readers and crash safety."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from agent.core.models import Response
from agent.state import ops_responses
from agent.state.dialect import SQLITE_BULK_CACHE_KIB, SQLITE_CACHE_KIB, bulk_cache
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


def _statements(store: StateStore) -> list[str]:
    """Every SQL statement SQLite runs on the store's connections from now on."""
    seen: list[str] = []

    def traced(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        dbapi_conn.set_trace_callback(seen.append)

    event.listen(store.engine, "checkout", traced)
    return seen


def _answers(count: int) -> list[Response]:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    return [Response(f"r{i}", f"p{i}@x.com", i % 11, at, source="t") for i in range(count)]


def _add(sqlite_url: str, count: int) -> list[str]:
    """Store ``count`` answers (10 and up: a bulk ingest); the PRAGMAs that ran, and
    the connection's cache size checked to be the small one again."""
    with StateStore.open(sqlite_url) as store:
        seen = _statements(store)
        store.add_responses(_answers(count))
        ran = list(seen)
        assert store.count_responses() == count
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB
    if "PRAGMA shrink_memory" in ran:
        assert ran.index("COMMIT") < ran.index("PRAGMA shrink_memory")
    return [s for s in ran if s.startswith("PRAGMA")]


def test_a_bulk_ingest_raises_the_page_cache_then_gives_its_pages_back(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops_responses, "BULK_ROWS", 10)
    assert _add(sqlite_url, 10) == [
        f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}",
        f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}",
        "PRAGMA shrink_memory",  # after the commit, as the connection went back to the pool
    ]


def test_a_few_answers_keep_the_small_cache_and_free_nothing(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops_responses, "BULK_ROWS", 10)
    assert _add(sqlite_url, 9) == []


def test_a_failed_bulk_write_sets_the_cache_back(sqlite_url: str) -> None:
    with StateStore.open(sqlite_url) as store:
        seen = _statements(store)
        with (
            pytest.raises(RuntimeError),
            store.transaction() as tx,
            bulk_cache(tx.connection),
        ):
            raise RuntimeError("the write failed")
        assert seen[-1] == "PRAGMA shrink_memory"
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB


def test_the_pieces_of_a_bulk_write_keep_the_large_cache_until_it_is_over(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``store.add_responses`` commits in pieces: every piece runs with the large cache
    (none frees it in between), and its pages are freed once the write is over."""
    from agent.state import pieces
    from agent.state import store as store_module

    monkeypatch.setattr(store_module, "BULK_ROWS", 10)
    real = pieces.commit_in_pieces
    monkeypatch.setattr(
        store_module,
        "commit_in_pieces",
        lambda begin, items, write: real(begin, items, write, size=3),
    )
    with StateStore.open(sqlite_url) as store:
        seen = _statements(store)
        assert store.add_responses(_answers(10)).added
        during = list(seen)
        assert store.count_responses() == 10  # the next use of the connection, after it
        after = seen[len(during) :]
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB
    assert during.count("COMMIT") == 4  # 3 + 3 + 3 + 1
    assert [s for s in during if s.startswith("PRAGMA")] == [
        f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}"  # once: the pieces share the connection
    ]
    assert [s for s in after if s.startswith("PRAGMA")] == [
        f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}",
        "PRAGMA shrink_memory",
    ]

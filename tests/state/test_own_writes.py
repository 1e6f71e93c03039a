"""A thread's own moves of the input version, told from any other writer's."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from agent.core.models import Response
from agent.state.own_writes import carry_watch
from agent.state.store import StateStore

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _answer(store: StateStore, rid: str, *, fail: bool = False) -> None:
    with store.transaction() as tx:
        tx.add_responses([Response(rid, "p@a.example", 9, NOW, source="hook")])
        if fail:
            raise RuntimeError("rolled back")


def _in_thread(target: Callable[[], None]) -> None:
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()


def test_the_watched_threads_writes_chain_from_start_to_end(store: StateStore) -> None:
    watch = store.own_writes.watch()
    try:
        start = store.input_version()
        _answer(store, "r1")
        with store.transaction() as tx:
            tx.set_cursor("files", "responses", "c1")  # no input: no move
        with pytest.raises(RuntimeError):
            _answer(store, "r2", fail=True)
        _answer(store, "r3")
        assert len(watch.moves) == 2
        assert watch.only_own(start, store.input_version())
        mark = watch.mark()
        _in_thread(lambda: _answer(store, "r4"))  # another writer
        assert not watch.only_own(start, store.input_version())
        middle = store.input_version()
        _answer(store, "r5")
        assert watch.only_own(middle, store.input_version(), mark)
    finally:
        store.own_writes.stop()
    _answer(store, "r6")
    assert len(watch.moves) == 3  # not watched any more


def test_a_thread_working_for_the_watched_one_joins_its_watch(store: StateStore) -> None:
    watch = store.own_writes.watch()
    try:
        start = store.input_version()
        join = carry_watch(store.engine)

        def lane() -> None:
            join()
            _answer(store, "lane")

        _in_thread(lane)
        assert watch.only_own(start, store.input_version())
    finally:
        store.own_writes.stop()
    late = carry_watch(store.engine)  # the caller is not watched now: nothing to join

    def after() -> None:
        late()
        _answer(store, "late")

    _in_thread(after)
    assert len(watch.moves) == 1

"""Responses are stored once per (source, id): repeats ignored, conflicts refused."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from agent.core.models import Contact, Response
from agent.state.ops_base import BATCH_ROWS
from agent.state.ops_responses import ResponseOps
from agent.state.records import AddResult
from agent.state.store import StateStore

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _response(rid: str, score: int = 9, source: str = "responses.csv", **kw: object) -> Response:
    return Response(
        response_id=rid,
        email=f"{rid}@acme.com",
        score=score,
        submitted_at=kw.pop("submitted_at", T0),  # type: ignore[arg-type]
        source=source,
        **kw,  # type: ignore[arg-type]
    )


def test_new_responses_are_stored_with_every_field(store: StateStore) -> None:
    full = Response(
        response_id="r1",
        email="Ann@Acme.com",
        score=3,
        submitted_at=T0,
        driver="Support",
        comment="Slow tickets — très lent",
        account_hint="001A",
        loop_closed_at=T0 + timedelta(hours=5),
        source="webhook",
    )
    bare = Response("r2", None, 10, T0 + timedelta(days=1), source="webhook")
    result = store.add_responses([full, bare])
    assert result.added == (full, bare)
    assert (result.duplicates, result.conflicts) == (0, ())
    assert store.load_responses() == [full, bare]
    assert store.has_response("webhook", "r1")
    assert not store.has_response("responses.csv", "r1")
    assert store.count_responses() == 2


def test_an_exact_repeat_is_ignored(store: StateStore) -> None:
    store.add_responses([_response("r1")])
    again = store.add_responses([_response("r1"), _response("r2")])
    assert [r.response_id for r in again.added] == ["r2"]
    assert again.duplicates == 1
    assert again.conflicts == ()


def test_the_same_instant_in_another_offset_is_the_same_content(store: StateStore) -> None:
    store.add_responses([_response("r1")])
    shifted = _response("r1", submitted_at=T0.astimezone(timezone(timedelta(hours=-5))))
    assert store.add_responses([shifted]).duplicates == 1


def test_a_different_answer_under_a_known_id_is_a_conflict_and_not_stored(
    store: StateStore,
) -> None:
    original = _response("r1", score=9)
    store.add_responses([original])
    changed = _response("r1", score=2)
    result = store.add_responses([changed])
    assert result.added == ()
    assert len(result.conflicts) == 1
    conflict = result.conflicts[0]
    assert conflict.response == changed
    assert conflict.stored_hash != conflict.new_hash
    assert store.load_responses() == [original]


def test_the_same_id_in_another_source_is_another_response(store: StateStore) -> None:
    result = store.add_responses([_response("r1", source="a.csv"), _response("r1", source="b")])
    assert len(result.added) == 2


def test_repeats_within_one_call_compare_with_the_first(store: StateStore) -> None:
    first = _response("r1", score=9)
    result = store.add_responses([first, _response("r1", score=9), _response("r1", score=1)])
    assert result.added == (first,)
    assert result.duplicates == 1
    assert [c.response.score for c in result.conflicts] == [1]


def test_repeats_across_batches_are_classified(store: StateStore) -> None:
    batch = [_response(f"r{i:06d}") for i in range(BATCH_ROWS + 10)]
    late_conflict = _response("r000000", score=0)
    result = store.add_responses([*batch, batch[1], late_conflict])
    assert len(result.added) == len(batch)
    assert result.duplicates == 1
    assert [c.response for c in result.conflicts] == [late_conflict]
    assert store.count_responses() == len(batch)


def test_adding_inside_a_transaction_rolls_back_with_it(store: StateStore) -> None:
    try:
        with store.transaction() as tx:
            tx.add_responses([_response("r1")])
            tx.set_cursor("webhook", "responses", "x")
            raise RuntimeError("crash")
    except RuntimeError:
        pass
    assert store.count_responses() == 0
    assert store.add_responses([_response("r1")]).added != ()


def test_load_since_returns_responses_at_or_after_it_oldest_first(store: StateStore) -> None:
    rs = [_response(f"r{d}", submitted_at=T0 + timedelta(days=d)) for d in (3, 0, 2, 1)]
    store.add_responses(rs)
    since = T0 + timedelta(days=1)
    loaded = store.load_responses(since=since.astimezone(timezone(timedelta(hours=3))))
    assert [r.response_id for r in loaded] == ["r1", "r2", "r3"]
    assert all(r.submitted_at.tzinfo is not None for r in loaded)


def test_naive_timestamps_are_read_as_utc(store: StateStore) -> None:
    naive = _response("r1", submitted_at=datetime(2024, 3, 1, 12, 0))
    store.add_responses([naive])
    assert store.load_responses()[0].submitted_at == T0
    assert store.add_responses([replace(naive, submitted_at=T0)]).duplicates == 1


def test_loaded_answers_share_repeated_text_with_each_other_and_the_contacts(
    store: StateStore,
) -> None:
    """A million loaded answers repeat a few sources and drivers, and each respondent's
    email is also a contact's: one string each, not a copy per row (the database hands
    back a new string for every row)."""
    store.upsert_records("files", "contact", [Contact("c1", "a1", email="ann@acme.com")])
    answers = [
        Response(f"r{i}", "ann@acme.com", i, T0, driver="Support", account_hint="001A")
        for i in range(3)
    ]
    store.add_responses([replace(r, source="webhook") for r in answers])
    loaded = store.load_responses()
    assert [r.response_id for r in loaded] == ["r0", "r1", "r2"]
    first = loaded[0]
    for other in loaded[1:]:
        assert other.email is first.email
        assert other.driver is first.driver
        assert other.account_hint is first.account_hint
        assert other.source is first.source
    assert store.load_contacts("files")[0].email is first.email


def test_responses_out_of_key_order_are_all_stored_and_reported_in_the_given_order(
    store: StateStore,
) -> None:
    """Rows go in in primary-key order (faster for the key index); what the call reports
    keeps the order the responses came in, across batches and sources."""
    count = BATCH_ROWS + 7
    ids = [f"r{(i * 7919) % count:06d}" for i in range(count)]  # every id once, no order
    given = [
        _response(rid, score=i % 11, source=("b" if i % 3 else "a")) for i, rid in enumerate(ids)
    ]
    stored_before = [given[5], given[BATCH_ROWS + 3]]
    store.add_responses([stored_before[0], replace(stored_before[1], score=10)])
    with store.transaction() as tx:
        result = tx.add_responses(given)
    assert list(result.added) == [r for i, r in enumerate(given) if i not in (5, BATCH_ROWS + 3)]
    assert result.duplicates == 1
    assert [c.response for c in result.conflicts] == [stored_before[1]]
    by_key = {(r.source, r.response_id): r for r in store.load_responses()}
    assert len(by_key) == count
    assert all(by_key[r.source, r.response_id] == r for r in result.added)


def test_responses_are_read_by_key_oldest_first_leaving_out_unknown_keys(
    store: StateStore,
) -> None:
    late = _response("r1", submitted_at=T0 + timedelta(days=2), source="webhook")
    early = _response("r2", comment="kept", source="webhook")
    other = _response("r1", score=2, source="responses.csv")
    store.add_responses([late, early, other, _response("r3", source="webhook")])
    keys = [("webhook", "r1"), ("responses.csv", "r1"), ("webhook", "r2"), ("webhook", "r2")]
    found = store.responses_by_key([*keys, ("webhook", "unknown"), ("nowhere", "r1")])
    assert found == [other, early, late]  # each once, in the order a full load gives
    assert store.responses_by_key([]) == []


@pytest.mark.postgres
@pytest.mark.parametrize("score", [2, 9])
def test_an_answer_another_transaction_stores_meanwhile_is_compared_not_added(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, score: int
) -> None:
    """Two webhook requests carry one answer (PostgreSQL serves them side by side): the
    second looked the key up before the first committed. It must report a repeat or a
    conflict, not a new answer (the agent would note its content, which is not stored)."""
    first, second = _response("r1", score=9), _response("r1", score=score)
    looked, committed = threading.Event(), threading.Event()
    lookup = ResponseOps._stored_hashes

    def looked_then_wait(self: ResponseOps, keys: Sequence[tuple[str, str]]) -> dict[Any, str]:
        found = lookup(self, keys)
        if threading.current_thread().name == "second" and not looked.is_set():
            looked.set()
            assert committed.wait(10)
        return found

    monkeypatch.setattr(ResponseOps, "_stored_hashes", looked_then_wait)
    results: list[AddResult] = []
    with StateStore.open(postgres_url) as store:
        racing = threading.Thread(
            target=lambda: results.append(store.add_responses([second])), name="second"
        )
        racing.start()
        assert looked.wait(10)
        assert store.add_responses([first]).added == (first,)
        committed.set()
        racing.join(10)
        assert store.load_responses() == [first]
    [result] = results
    assert result.added == ()
    assert (result.duplicates, len(result.conflicts)) == ((1, 0) if score == 9 else (0, 1))


@pytest.mark.postgres
def test_a_key_lookup_reads_only_its_keys_after_the_table_grew_on_postgres(
    postgres_url: str,
) -> None:
    """An ingest looks the keys of each piece up before it inserts (hundreds of pieces in
    a first ingest of a million answers). PostgreSQL plans the lookup from the table's
    statistics; with none yet (autovacuum off, or not round yet) it planned for a table
    of a few rows: every row of the source read and checked against the piece's ids,
    so each lookup read the whole table (5 s a lookup at 134,000 rows, in a benchmark
    that then ran for hours). The bulk path analyzes the table as it grows: a lookup
    reads its own keys only."""
    from sqlalchemy import text

    def index_reads(store: StateStore) -> int:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT idx_tup_read FROM pg_stat_user_indexes "
                        "WHERE relname = 'responses' AND schemaname = current_schema()"
                    )
                ).scalar_one()
            )

    with StateStore.open(postgres_url) as store:
        for i in range(12):  # the lookup runs often while the table is nearly empty
            store.add_responses([_response(f"early-{i}")])
        store.add_responses([_response(f"bulk-{i:05d}") for i in range(20_000)])
        with store.engine.connect() as conn:  # the statistics the reads below are told
            if conn.execute(text("SHOW server_version_num")).scalar_one() < "150000":
                pytest.skip("PostgreSQL before 15 cannot flush its statistics on demand")
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        before = index_reads(store)
        store.add_responses([_response(f"late-{i}") for i in range(10)])
        with store.engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        read = index_reads(store) - before
    assert read < 1_000, f"one lookup of 10 keys read {read} index entries"


@pytest.mark.postgres
def test_the_bulk_path_analyzes_a_table_each_time_it_doubled_on_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statistics follow a growing table without an analysis per piece: once the rows
    written since the last analysis reach the threshold and the rows the table held
    then (so at 1, 2, 4, 8 times the threshold for pieces of the threshold's size)."""
    from sqlalchemy import event

    from agent.state import dialect

    monkeypatch.setattr(dialect, "ANALYZE_AFTER_ROWS", 100)
    analyzed: list[int] = []
    with StateStore.open(postgres_url) as store:
        piece = 0

        def seen(*args: Any) -> None:
            if args[2].startswith("ANALYZE"):
                analyzed.append(piece)

        event.listen(store.engine, "before_cursor_execute", seen)
        for piece in range(8):  # read by ``seen``
            store.add_responses([_response(f"p{piece}-{i:03d}") for i in range(100)])
    assert analyzed == [0, 1, 3, 7]  # during the 1st, 2nd, 4th and 8th piece


@pytest.mark.postgres
def test_an_analysis_never_holds_a_write_behind_a_vacuum_on_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A VACUUM or another ANALYZE of the table holds the lock an analysis needs: the
    analysis gives up after its short wait, the write goes on (its rows stored, the
    transaction's own lock timeout as it was), and a later write analyzes."""
    from sqlalchemy import create_engine, event, text

    from agent.state import dialect, schema

    monkeypatch.setattr(dialect, "ANALYZE_AFTER_ROWS", 100)
    monkeypatch.setattr(dialect, "ANALYZE_LOCK_WAIT", "200ms")
    analyzed: list[str] = []
    other = create_engine(postgres_url)
    with StateStore.open(postgres_url) as store:
        event.listen(
            store.engine,
            "after_cursor_execute",
            lambda *args: analyzed.append(args[2]) if args[2].startswith("ANALYZE") else None,
        )
        with other.connect() as vacuum:  # what a VACUUM holds on the table
            vacuum.execute(text("LOCK TABLE responses IN SHARE UPDATE EXCLUSIVE MODE"))
            store.add_responses([_response(f"a{i:03d}") for i in range(100)])
            assert analyzed == []
            vacuum.rollback()
        with store.engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '7s'"))
            row = {"source": "responses.csv", "content_hash": "h", "score": 9}
            row |= {"submitted_at": T0, "received_at": T0}
            dialect.bulk_write(
                conn,
                schema.responses,
                [
                    {**dict.fromkeys(schema.responses.c.keys()), **row, "response_id": f"b{i}"}
                    for i in range(100)
                ],
            )
            assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "7s"
        assert analyzed == ["ANALYZE responses"]
        assert len(store.load_responses()) == 200
    other.dispose()

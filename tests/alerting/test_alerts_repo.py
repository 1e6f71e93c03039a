"""The outbox, state and silence repositories on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from slackkit import record
from sqlalchemy import Engine, event

from agent.alerts.model import AlertState, Sent
from agent.alerts.repo import AlertRepo
from agent.state.store import StateStore

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def _exercise(repo: AlertRepo) -> None:
    state = AlertState("detractor", "a1", True, NOW.astimezone(CET), NOW, "a1")
    assert (
        repo.record(
            [record("a1", "C1", NOW), record("a2", "C1", NOW + timedelta(seconds=1))], [state]
        )
        == 2
    )
    assert repo.record([record("a1", "C1", NOW)], []) == 0  # same alert id: no second row
    pending = repo.pending()
    assert [p.alert_id for p in pending] == ["a1", "a2"]
    assert pending[0].created_at == NOW
    assert pending[0].content.response is not None
    repo.mark_attempt("a1", "C1")
    assert repo.pending()[0].attempts == 1
    assert repo.pending()[0].channel_id == "C1"
    repo.mark_sent("a1", Sent("C1", "1.000001"), NOW)
    assert repo.sent_message("a1") == Sent("C1", "1.000001")
    assert repo.status("a1") == "sent"

    stored = repo.states(["detractor"])[("detractor", "a1")]
    assert stored.since == NOW
    assert stored.since.tzinfo is not None
    closed = repo.close("a1", "<@U1>", NOW + timedelta(hours=2))
    assert closed is not None
    assert closed.closed_at == NOW + timedelta(hours=2)
    assert repo.close("a1", "<@U2>", NOW + timedelta(hours=3)) is None
    assert repo.close("unknown", "<@U2>", NOW) is None

    silence = repo.add_silence(
        rule_id="r",
        account_id=None,
        reason="why",
        created_by=None,
        now=NOW,
        expires_at=NOW + timedelta(days=1),
    )
    assert [s.id for s in repo.silences(NOW)] == [silence]
    assert repo.silences(NOW + timedelta(days=2)) == []
    assert len(repo.silences(NOW + timedelta(days=2), include_expired=True)) == 1
    with pytest.raises(ValueError, match="rule or an account"):
        repo.add_silence(
            rule_id=None, account_id=None, reason="x", created_by=None, now=NOW, expires_at=NOW
        )


def _digest(repo: AlertRepo) -> None:
    members = [replace(record(f"m{i}", "C1", NOW), status="digested") for i in range(2)]
    digest = replace(record("d1", "C1", NOW), members=("m0", "m1"))
    repo.record([*members, digest], [])
    assert [p.alert_id for p in repo.pending()] == ["d1", "a2"]  # members are not sent alone
    repo.mark_sent("d1", Sent("C1", "2.000002"), NOW)
    assert repo.sent_message("m0") == Sent("C1", "2.000002")
    assert repo.status("m1") == "digested"


def test_repo_on_sqlite(engine: Engine) -> None:
    _exercise(AlertRepo(engine))
    _digest(AlertRepo(engine))


@pytest.mark.postgres
def test_repo_on_postgres(pg_engine: Engine) -> None:
    _exercise(AlertRepo(pg_engine))
    _digest(AlertRepo(pg_engine))


def test_states_read_back_every_field_in_utc(store: StateStore) -> None:
    """``states`` and ``states_of`` give back each stored field, instants aware in UTC
    whatever offset they were recorded in, on both dialects."""
    repo = AlertRepo(store.engine)
    full = AlertState(
        "detractor",
        "responses.csv/R1",
        True,
        NOW.astimezone(CET),
        NOW + timedelta(minutes=1),
        "alert-1",
        (NOW + timedelta(hours=1)).astimezone(CET),
        NOW + timedelta(hours=2),
        "<@U1>",
    )
    bare = AlertState("at-risk", "a2", False, NOW)
    repo.record([], [full, bare])
    utc = replace(
        full,
        since=NOW,
        escalated_at=NOW + timedelta(hours=1),
    )
    read = repo.states(["detractor", "at-risk"])
    assert read == {("detractor", "responses.csv/R1"): utc, ("at-risk", "a2"): bare}
    for state in read.values():
        for instant in (state.since, state.last_alert_at, state.escalated_at, state.closed_at):
            assert instant is None or instant.utcoffset() == timedelta(0)
    assert repo.states_of(["detractor", "at-risk"], ["a2"]) == {("at-risk", "a2"): bare}
    assert repo.states([]) == {}


def test_the_states_digest_moves_exactly_when_the_states_do(store: StateStore) -> None:
    """A deciding job compares a digest of every state with its last run's instead of
    keeping the states: the digest stays while nothing is written and moves with any
    field of any state, a new state, or another rule's."""
    repo = AlertRepo(store.engine)
    first = AlertState("detractor", "r1", True, NOW, NOW, "alert-1")
    other = AlertState("at-risk", "a1", True, NOW)
    empty = repo.states_digest(["detractor", "at-risk"])
    assert repo.states_digest([]) == empty  # no rule: nothing read
    repo.record([], [first, other])
    base = repo.states_digest(["detractor", "at-risk"])
    assert base != empty
    assert repo.states_digest(["at-risk", "detractor", "at-risk"]) == base  # as a set
    assert repo.states_digest(["detractor"]) != base  # the other rule's state is left out
    seen = {empty, base}
    for changed in (
        replace(first, escalated_at=NOW + timedelta(hours=1)),
        replace(first, escalated_at=NOW + timedelta(hours=1), closed_at=NOW, closed_by="<@U1>"),
        replace(first, escalated_at=NOW + timedelta(hours=1), closed_at=NOW, firing=False),
    ):
        repo.record([], [changed])
        digest = repo.states_digest(["detractor", "at-risk"])
        assert digest not in seen
        seen.add(digest)
        assert repo.states_digest(["detractor", "at-risk"]) == digest  # read again: the same
    repo.record([], [AlertState("detractor", "r2", True, NOW)])
    assert repo.states_digest(["detractor", "at-risk"]) not in seen


def test_two_threads_recording_the_same_alert_store_it_once(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new answer is decided on its own thread while the cycle's evaluation records
    the same response alert: the second recorder sees the first's row (no error from
    the primary key, no second row), on both databases."""
    import threading

    from agent.alerts import repo as repo_module

    repo = AlertRepo(store.engine)
    state = AlertState("detractor", "a1", True, NOW, NOW, "a1")
    original = repo_module._insert_outbox_rows
    results: list[int] = []
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def other_thread() -> None:
        try:
            results.append(repo.record([record("a1", "C1", NOW)], [state]))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def while_recording(conn: object, records: object) -> int:
        # the first recorder's transaction is open: the other thread records meanwhile
        # (it waits for this one, or, unserialised, commits first)
        monkeypatch.setattr(repo_module, "_insert_outbox_rows", original)
        threads.append(threading.Thread(target=other_thread))
        threads[0].start()
        threads[0].join(2)
        return original(conn, records)  # type: ignore[arg-type]

    monkeypatch.setattr(repo_module, "_insert_outbox_rows", while_recording)
    results.append(repo.record([record("a1", "C1", NOW)], [state]))
    threads[0].join(30)
    assert errors == []
    assert sorted(results) == [0, 1]
    assert [p.alert_id for p in repo.pending()] == ["a1"]


def test_outbox_rows_go_in_chunks_within_one_transaction(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first cycle records tens of thousands of alerts: their rows are built and
    inserted a chunk at a time, still in one transaction (all or nothing), and a
    repeated alert id keeps its first record across chunks."""
    import agent.alerts.repo as repo_module

    monkeypatch.setattr(repo_module, "_OUTBOX_CHUNK", 2)
    repo = AlertRepo(store.engine)
    sizes: list[int] = []
    real_write = repo_module.bulk_write

    def counting(conn, table, rows, *args, **options):  # type: ignore[no-untyped-def]
        # the database's bulk path (executemany on SQLite, COPY on PostgreSQL)
        if table.name == "alert_outbox":
            sizes.append(len(rows))
        return real_write(conn, table, rows, *args, **options)

    monkeypatch.setattr(repo_module, "bulk_write", counting)
    batch = [record(f"a{i}", "C1", NOW + timedelta(seconds=i)) for i in range(5)]
    batch.insert(3, record("a0", "C2", NOW))  # the same id again: the first one stays
    assert repo.record(batch, []) == 5
    assert sizes == [2, 2, 1]
    pending = repo.pending()
    assert [p.alert_id for p in pending] == ["a0", "a1", "a2", "a3", "a4"]
    assert pending[0].destination.channel == "C1"

    real_row = repo_module._outbox_row

    def failing(rec):  # type: ignore[no-untyped-def]
        if rec.content.alert_id == "b3":
            raise RuntimeError("no row for b3")
        return real_row(rec)

    monkeypatch.setattr(repo_module, "_outbox_row", failing)
    with pytest.raises(RuntimeError, match="b3"):
        repo.record([record(f"b{i}", "C1", NOW) for i in range(5)], [])
    assert [p.alert_id for p in repo.pending()] == ["a0", "a1", "a2", "a3", "a4"]


def test_alert_states_go_in_chunks_within_one_transaction(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first cycle records tens of thousands of states: their rows are written a
    chunk at a time (new ones inserted, known ones updated), still all or nothing."""
    import agent.alerts.repo as repo_module

    monkeypatch.setattr(repo_module, "_OUTBOX_CHUNK", 2)
    repo = AlertRepo(store.engine)
    repo.record([], [AlertState("at-risk", "A1", True, NOW)])
    sizes: list[tuple[str, int]] = []

    def counting(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]  # noqa: PLR0917  # SQLAlchemy's event signature
        verb = statement.lstrip().split()[0].upper()
        if "alert_state" in statement and verb == "UPDATE":
            sizes.append((verb, len(parameters) if executemany else 1))

    real_write = repo_module.bulk_write

    def inserting(conn, table, rows, *args, **options):  # type: ignore[no-untyped-def]
        # new states go by the database's bulk path (executemany / COPY)
        if table.name == "alert_state":
            sizes.append(("INSERT", len(rows)))
        return real_write(conn, table, rows, *args, **options)

    monkeypatch.setattr(repo_module, "bulk_write", inserting)
    states = [AlertState("at-risk", f"A{i}", True, NOW + timedelta(hours=1)) for i in range(5)]
    event.listen(store.engine, "before_cursor_execute", counting)
    try:
        repo.record([], states)
    finally:
        event.remove(store.engine, "before_cursor_execute", counting)
    assert sizes == [("UPDATE", 1), ("INSERT", 1), ("INSERT", 2), ("INSERT", 1)]
    stored = repo.states(["at-risk"])
    assert sorted(s.since for s in stored.values()) == [NOW + timedelta(hours=1)] * 5

    def failing(state: AlertState) -> dict[str, object]:
        if state.subject == "B3":
            raise RuntimeError("no row for B3")
        return real_values(state)

    real_values = repo_module._state_values
    monkeypatch.setattr(repo_module, "_state_values", failing)
    with pytest.raises(RuntimeError, match="B3"):
        repo.record([], [AlertState("at-risk", f"B{i}", True, NOW) for i in range(5)])
    assert len(repo.states(["at-risk"])) == 5  # none of the B states: all or nothing


def test_an_alert_another_transaction_stores_after_the_lookup_is_kept_not_an_error(
    pg_engine: Engine,
) -> None:
    """Two recorders of one update (the escalation job's and the Close button's
    repositories, maybe on two replicas): the one that looked the id up first and
    inserts second keeps the stored row instead of failing on its key."""
    repo, other = AlertRepo(pg_engine), AlertRepo(pg_engine)
    update = record("u1", "C1", NOW)
    raced: list[int] = []

    def looked_up(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if raced or not statement.lstrip().upper().startswith("SELECT"):
            return
        raced.append(-1)  # once: the other recorder's own lookup passes through
        raced[0] = other.record([update], [])  # its own transaction, committed

    event.listen(pg_engine, "after_cursor_execute", looked_up)
    try:
        assert repo.record([update, record("u2", "C1", NOW)], []) == 1
    finally:
        event.remove(pg_engine, "after_cursor_execute", looked_up)
    assert raced == [1]
    assert [p.alert_id for p in repo.pending()] == ["u1", "u2"]


def test_a_state_another_transaction_stores_after_the_lookup_is_updated_not_an_error(
    pg_engine: Engine,
) -> None:
    """Two recorders of one new state (two replicas, or the answers path and the cycle):
    the one that looked the key up first and writes second finds it stored by the bulk
    insert's returned keys, and updates it as a known state instead of failing on its
    key or dropping its decision; a closure the other recorded stays."""
    repo, other = AlertRepo(pg_engine), AlertRepo(pg_engine)
    closed = AlertState("at-risk", "A1", True, NOW, closed_at=NOW, closed_by="<@U1>")
    mine = AlertState("at-risk", "A1", True, NOW, NOW + timedelta(hours=1), "at-risk:A1:2")
    raced: list[int] = []

    def looked_up(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if raced or not statement.lstrip().upper().startswith("SELECT"):
            return
        raced.append(-1)  # once: the other recorder's own lookup passes through
        raced[0] = other.record([], [closed])  # its own transaction, committed

    event.listen(pg_engine, "after_cursor_execute", looked_up)
    try:
        repo.record([], [mine, AlertState("at-risk", "A2", True, NOW)])
    finally:
        event.remove(pg_engine, "after_cursor_execute", looked_up)
    assert raced == [0]
    stored = repo.states(["at-risk"])
    assert sorted(subject for _, subject in stored) == ["A1", "A2"]
    assert stored[("at-risk", "A1")].last_alert_id == "at-risk:A1:2"  # this decision
    assert stored[("at-risk", "A1")].closed_by == "<@U1>"  # the other's closure kept

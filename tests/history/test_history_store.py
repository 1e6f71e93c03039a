"""The history tables: rows only on change, one portfolio point per as_of, thinning."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agent.config.settings import ConfigError, HistorySettings, load_settings
from agent.core.compute import compute_document
from agent.core.document import MetricsDocument
from agent.core.history import Retention, account_figures, digest, thinned_away
from agent.state import schema
from agent.state.history import HistoryRepo, record_history
from agent.state.store import StateStore
from tests.core_builders import account, contact, response

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _document(as_of: datetime, scores: tuple[int, ...] = (9, 3)) -> MetricsDocument:
    accounts = [account("A", 1000, domains=("a.com",)), account("B", 500, domains=("b.com",))]
    contacts = [contact("c1", "A", "x@a.com"), contact("c2", "B", "y@b.com")]
    answers = [
        response("r1", "x@a.com", scores[0], at=NOW - timedelta(days=10)),
        response("r2", "y@b.com", scores[1], at=NOW - timedelta(days=10)),
    ]
    return compute_document(accounts, contacts, answers, as_of=as_of)


def _count(store: StateStore, table: object) -> int:
    with store.reading() as tx:
        return int(tx.connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_rows_only_when_a_figure_changes(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        repo = HistoryRepo(store)
        first = repo.record("files", _document(NOW))
        assert (first.accounts, first.portfolio) == (2, 1)
        again = repo.record("files", _document(NOW))  # the same cycle recorded twice
        assert (again.accounts, again.portfolio) == (0, 0)
        later = repo.record("files", _document(NOW + timedelta(hours=1)))
        assert (later.accounts, later.portfolio) == (0, 1)  # unchanged accounts: no row
        changed = repo.record("files", _document(NOW + timedelta(hours=2), scores=(9, 10)))
        assert (changed.accounts, changed.portfolio) == (1, 1)
        rows = repo.accounts("files")
        assert [at for at, _ in rows["B"]] == [NOW, NOW + timedelta(hours=2)]
        assert rows["B"][-1][1]["nps"] == 100.0
        assert len(repo.portfolio("files")) == 3
        in_force = repo.accounts_at("files", NOW + timedelta(hours=1))
        assert in_force["B"].figures["nps"] == -100.0
        assert repo.accounts_at("files", NOW + timedelta(hours=2), strict=True)["B"].as_of == NOW
        since = repo.accounts_at("files", NOW + timedelta(hours=2))["B"].since
        assert since["nps"] == [(NOW + timedelta(hours=2)).isoformat(), 2 / 24]
        assert since["revenue"] == [NOW.isoformat(), None]
        assert repo.portfolio_before("files", NOW + timedelta(hours=2))[0] == NOW + timedelta(  # type: ignore[index]
            hours=1
        )
        assert repo.accounts("salesforce") == {}  # per CRM


def test_rows_in_force_stay_small(state_url: str) -> None:
    """The change rules hold every account's row in force, once per duration a rule
    names (two sets of 50,000 rows in a running agent's alerts job): the figures' keys
    are shared by every row, and ``since`` is decoded when asked for, never kept."""
    with StateStore.open(state_url) as store:
        repo = HistoryRepo(store)
        repo.record("files", _document(NOW))
        rows = repo.accounts_at("files", NOW)
        a, b = rows["A"], rows["B"]
        assert {k: id(k) for k in a.figures} == {k: id(k) for k in b.figures}
        assert a.since == a.since
        assert a.since is not a.since  # decoded at each ask: nothing decoded stays
        assert a.since["nps"] == [NOW.isoformat(), None]
        assert a == repo.accounts_at("files", NOW + timedelta(hours=1))["A"]
        assert a != b
        assert a._since is b._since  # recorded together: one text for both


def test_a_backfill_into_the_past_compares_with_the_row_in_force_then(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        repo = HistoryRepo(store)
        repo.record("files", _document(NOW, scores=(9, 10)))
        past = repo.record("files", _document(NOW - timedelta(days=5), scores=(9, 3)))
        assert past.accounts == 2  # nothing was stored before it
        heads = {r.account_id: r.as_of for r in _heads(store)}
        assert heads == {"A": NOW, "B": NOW}  # the newest rows stay the heads
        follow = repo.record("files", _document(NOW + timedelta(hours=1), scores=(9, 10)))
        assert follow.accounts == 0


def _heads(store: StateStore) -> list[object]:
    with store.reading() as tx:
        return list(tx.connection.execute(select(schema.history_heads)))


def test_the_clock_alone_does_not_make_a_row() -> None:
    doc = _document(NOW)
    a = doc.accounts[0]
    moved = account_figures(replace(a, recency_score=(a.recency_score or 0) - 0.3))
    assert digest(moved) == digest(account_figures(a))
    assert digest(account_figures(replace(a, health_score=(a.health_score or 0) - 0.3))) != digest(
        account_figures(a)
    )


def test_thinning_keeps_the_last_point_of_each_day_then_of_each_week() -> None:
    retention = Retention(timedelta(days=30), timedelta(days=365))
    stamps = [NOW - timedelta(hours=6 * i) for i in range(4 * 400)]  # every 6 hours, 400 days
    gone = set(thinned_away(stamps, NOW, retention))
    kept = sorted(set(stamps) - gone)
    recent = [s for s in kept if NOW - s <= timedelta(days=30)]
    assert len(recent) == 121  # every point of the last 30 days
    daily = [s for s in kept if timedelta(days=30) < NOW - s <= timedelta(days=365)]
    assert len({s.date() for s in daily}) == len(daily)  # one a day
    weekly = [s for s in kept if NOW - s > timedelta(days=365)]
    assert len({s.isocalendar()[:2] for s in weekly}) == len(weekly)  # one a week
    assert thinned_away(kept, NOW, retention) == []  # thinning again removes nothing


def test_only_the_accounts_named_changed_are_compared(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        repo = HistoryRepo(store)
        repo.record("files", _document(NOW))
        moved = _document(NOW + timedelta(hours=1), scores=(10, 10))  # A and B both moved
        only_b = repo.record("files", moved, changed=["B"])
        assert (only_b.compared, only_b.accounts) == (1, 1)
        rows = repo.accounts("files")
        assert [at for at, _ in rows["A"]] == [NOW]  # A was said unchanged: not compared
        assert [at for at, _ in rows["B"]] == [NOW, NOW + timedelta(hours=1)]
        nothing = repo.record("files", _document(NOW + timedelta(hours=2)), changed=[])
        assert (nothing.compared, nothing.accounts, nothing.portfolio) == (0, 0, 1)


def test_record_history_thins_and_obeys_the_switch(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        for days in (40.0, 40.1, 40.2, 2.0):
            HistoryRepo(store).record("files", _document(NOW - timedelta(days=days)))
        counts = record_history(store, "files", _document(NOW), HistorySettings())
        assert counts.pop("history_ms") >= 0
        assert counts == {
            "history_accounts": 0,
            "history_compared": 2,
            "history_portfolio": 1,
            "history_thinned": 2,
        }
        assert len(HistoryRepo(store).portfolio("files")) == 3
        off = record_history(
            store, "files", _document(NOW + timedelta(hours=1)), HistorySettings(enabled=False)
        )
        assert off == {}
        assert _count(store, schema.history_portfolio) == 3


def test_history_settings_are_validated(tmp_path: Path) -> None:
    config = tmp_path / "ax.yaml"
    config.write_text("history:\n  daily_after_days: 400\n  weekly_after_days: 365\n")
    with pytest.raises(ConfigError, match="weekly_after_days"):
        load_settings(config)
    config.write_text("history:\n  keep: forever\n")
    with pytest.raises(ConfigError, match="keep"):
        load_settings(config)


def test_the_fast_digest_equals_the_digest_of_the_stored_figures(state_url: str) -> None:
    from agent.core.history import digest_of

    doc = _document(NOW)
    with StateStore.open(state_url) as store:
        HistoryRepo(store).record("files", doc)
        stored = HistoryRepo(store).accounts_at("files", NOW)
    for metrics in doc.accounts:
        assert digest_of(metrics) == digest(account_figures(metrics))
        assert digest_of(metrics) == digest(stored[metrics.id].figures)  # after a JSON trip


def test_digests_stay_those_already_stored() -> None:
    # Stored heads hold these digests: a different digest for the same figures would
    # give every account a spurious new row after an upgrade.
    from agent.core.history import digest_of

    assert [digest_of(m) for m in _document(NOW).accounts] == [
        "3a129f249b26bf5580723ed5e8e83375",
        "e97e7d63e9693de4a5da01ca3d752914",
    ]


_Stored = list[tuple[object, ...]]


def _stored(store: StateStore, crm: str) -> tuple[_Stored, _Stored]:
    a, h = schema.history_accounts.c, schema.history_heads.c
    with store.reading() as tx:
        rows = tx.connection.execute(
            select(a.account_id, a.as_of, a.digest, a.figures, a.since)
            .where(a.crm == crm)
            .order_by(a.account_id, a.as_of)
        )
        accounts = [tuple(r) for r in rows]
        heads = tx.connection.execute(
            select(h.account_id, h.as_of, h.digest).where(h.crm == crm).order_by(h.account_id)
        )
        return accounts, [tuple(r) for r in heads]


def test_a_crm_without_history_yet_stores_what_a_crm_with_history_would(state_url: str) -> None:
    # "files" has no history: its first record skips every lookup; "hubspot" already
    # has a row (of another account), so the same record reads heads and rows before.
    later = NOW + timedelta(hours=3)
    with StateStore.open(state_url) as store:
        repo = HistoryRepo(store)
        repo.record("hubspot", replace(_document(NOW), accounts=[account_of("Z")]))
        for crm in ("files", "hubspot"):
            repo.record(crm, _document(NOW))
            repo.record(crm, _document(later, scores=(9, 10)))
        files, hubspot = _stored(store, "files"), _stored(store, "hubspot")
    assert files[0] == [r for r in hubspot[0] if r[0] != "Z"]
    assert files[1] == [r for r in hubspot[1] if r[0] != "Z"]
    first_since = {r[0]: r[4] for r in files[0] if r[1] == NOW}
    assert first_since["A"] == first_since["B"]  # every value began at the first row
    assert all(v == [NOW.isoformat(), None] for v in first_since["A"].values())  # type: ignore[attr-defined]
    b_later = next(r for r in files[0] if r[0] == "B" and r[1] == later)
    assert b_later[4]["nps"] == [later.isoformat(), 3 / 24]  # type: ignore[index]
    assert b_later[4]["revenue"] == [NOW.isoformat(), None]  # type: ignore[index]


def account_of(account_id: str) -> object:
    doc = _document(NOW)
    return replace(doc.accounts[0], id=account_id)


def test_a_map_shared_by_rows_is_stored_for_each(state_url: str) -> None:
    from agent.state.dialect import bulk_write

    shared, other = {"n": 1, "at": [NOW.isoformat(), None]}, {"n": 2}
    maps = [shared, shared, other, shared]
    with StateStore.open(state_url) as store:
        with store.transaction() as tx:
            bulk_write(
                tx.connection,
                schema.history_portfolio,
                [
                    {"crm": "files", "as_of": NOW + timedelta(hours=i), "figures": m}
                    for i, m in enumerate(maps)
                ],
            )
        assert [f for _, f in HistoryRepo(store).portfolio("files")] == maps


def test_a_record_compares_outside_the_write_lock_and_again_if_another_recorded_meanwhile(
    state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison runs before the write transaction: another writer commits during
    it (on SQLite it would wait for the whole record otherwise); as that writer recorded
    history, the record compares again under the lock and stores no row twice."""
    from agent.state import history as history_module

    later = _document(NOW + timedelta(hours=1), scores=(9, 10))
    compared = history_module._new_rows
    calls: list[int] = []

    def compare_while_another_records(*args: object, **kwargs: object) -> object:
        rows = compared(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(len(rows))
        if len(calls) == 1:  # another agent's record of the same cycle commits meanwhile
            with StateStore.open(state_url) as other:
                assert HistoryRepo(other).record("files", later).accounts == 1
        return rows

    with StateStore.open(state_url) as store:
        repo = HistoryRepo(store)
        repo.record("files", _document(NOW))
        monkeypatch.setattr(history_module, "_new_rows", compare_while_another_records)
        recorded = repo.record("files", later)
        # ours (B changed), the other's (the same), ours again under the lock: stored already
        assert calls == [1, 1, 0]
        assert (recorded.accounts, recorded.portfolio) == (0, 0)
        rows = repo.accounts("files")
        assert [at for at, _ in rows["B"]] == [NOW, NOW + timedelta(hours=1)]
        assert {r.account_id: r.as_of for r in _heads(store)}["B"] == NOW + timedelta(hours=1)


def test_a_record_encodes_its_rows_before_it_takes_the_write_lock(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Encoding every changed account's figures as JSON is most of a record's writing
    (seconds at 50,000 accounts): it happens before the write transaction, so a writer
    that needs SQLite's one write lock meanwhile (a webhook storing an answer) gets it."""
    import sqlite3

    from agent.state import jsontext

    later = _document(NOW + timedelta(hours=1), scores=(3, 10))
    wanted = [account_figures(a) for a in later.accounts]
    encode = jsontext._encode
    lock_free: list[bool] = []

    def encode_and_try_the_lock(value: object, *args: Any, **kwargs: Any) -> bytes:
        if value in wanted:
            other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.rollback()
                lock_free.append(True)
            except sqlite3.OperationalError:  # database is locked
                lock_free.append(False)
            finally:
                other.close()
        return encode(value, *args, **kwargs)

    with StateStore.open(sqlite_url) as store:
        repo = HistoryRepo(store)
        repo.record("files", _document(NOW))
        monkeypatch.setattr(jsontext, "_encode", encode_and_try_the_lock)
        assert repo.record("files", later).accounts == 2
        monkeypatch.undo()
        assert lock_free == [True, True]  # both changed accounts, neither under the lock
        stored = repo.accounts("files")
        assert [figures for _, figures in (stored["A"][-1], stored["B"][-1])] == wanted


def test_a_cycles_record_reads_no_head_under_the_write_lock(
    sqlite_url: str,
) -> None:
    """A record at or after the newest head moves every changed account's head without
    reading them in the write transaction (every head is older); the heads end as
    before: each account's at its newest row."""
    from sqlalchemy import event

    later = _document(NOW + timedelta(hours=1), scores=(3, 10))
    with StateStore.open(sqlite_url) as store:
        repo = HistoryRepo(store)
        repo.record("files", _document(NOW))
        statements: list[str] = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731  # (conn, cursor, sql, …)
        event.listen(store.engine, "before_cursor_execute", listen)
        try:
            assert repo.record("files", later).accounts == 2
        finally:
            event.remove(store.engine, "before_cursor_execute", listen)
        begins = [i for i, s in enumerate(statements) if s == "BEGIN IMMEDIATE"]
        transactions = [
            statements[start:end]
            for start, end in zip(begins, [*begins[1:], len(statements)], strict=True)
        ]
        pieces = [t for t in transactions if any("INTO history_accounts" in s for s in t)]
        assert len(pieces) == 1  # two rows: one piece
        heads_read = [s for s in pieces[0] if s.startswith("SELECT") and "history_heads" in s]
        assert len(heads_read) == 1  # the newest head, to see whether anyone recorded
        assert "max(history_heads.as_of)" in heads_read[0]
        assert {r.account_id: r.as_of for r in _heads(store)} == {
            "A": NOW + timedelta(hours=1),
            "B": NOW + timedelta(hours=1),
        }

"""Every write to an input of the cycle moves the input version, in its own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.schema import Column, Table

from agent.core.models import Account, Contact, Response
from agent.core.ports import FieldUpdate, WriteOutcome
from agent.state import schema
from agent.state.ops_settled import Settled
from agent.state.store import StateStore
from agent.state.versioning import written_table

AT = datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_every_table_is_versioned_or_says_why_not() -> None:
    tables = set(schema.metadata.tables)
    assert set(schema.VERSIONED) | set(schema.UNVERSIONED) == tables
    assert not set(schema.VERSIONED) & set(schema.UNVERSIONED)


def _value(column: Column[Any], n: int) -> Any:
    kind = column.type
    if isinstance(kind, (Integer, BigInteger)):
        return n
    if isinstance(kind, Float):
        return float(n)
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, (DateTime, schema.UtcDateTime)):
        return AT
    if isinstance(kind, JSON):
        return {"n": n}
    return f"v{n}"


def _row(table: Table, n: int) -> dict[str, Any]:
    return {c.name: _value(c, n) for c in table.columns if c.autoincrement is not True}


@pytest.mark.parametrize("name", schema.VERSIONED)
def test_insert_update_and_delete_each_move_the_version(store: StateStore, name: str) -> None:
    table = schema.metadata.tables[name]
    versions = [store.input_version()]
    with store.transaction() as tx:
        tx.connection.execute(insert(table).values(_row(table, 1)))
    versions.append(store.input_version())
    column = next(c for c in table.columns if not c.primary_key and not c.foreign_keys)
    with store.transaction() as tx:
        tx.connection.execute(update(table).values({column.name: _value(column, 2)}))
    versions.append(store.input_version())
    with store.transaction() as tx:
        tx.connection.execute(delete(table))
    versions.append(store.input_version())
    assert versions == sorted(set(versions)), versions  # strictly increasing


@pytest.mark.parametrize("name", schema.VERSIONED)
def test_a_statement_that_changes_no_row_leaves_the_version(store: StateStore, name: str) -> None:
    table = schema.metadata.tables[name]
    before = store.input_version()
    with store.transaction() as tx:
        tx.connection.execute(delete(table).where(False))  # type: ignore[arg-type]
    assert store.input_version() == before


def test_a_rolled_back_write_leaves_the_version(store: StateStore) -> None:
    before = store.input_version()

    def crash() -> None:
        with store.transaction() as tx:
            tx.add_responses([Response("r1", "a@x.com", 9, AT, source="s")])
            raise RuntimeError("crash before the commit")

    with pytest.raises(RuntimeError):
        crash()
    assert store.input_version() == before


def test_the_store_s_write_paths_move_the_version(store: StateStore) -> None:
    account = Account(id="A1", name="Acme", domains=("a.com",), revenue=1.0)
    contact = Contact(id="C1", account_id="A1", email="p@a.com")
    steps = [
        lambda: store.upsert_records("files", "account", [account]),
        lambda: store.replace_all("files", "contact", [contact]),
        lambda: store.mark_deleted("files", "contact", ["C1"]),
        lambda: store.add_responses([Response("r1", "p@a.com", 3, AT, source="s")]),
        lambda: store.record_written("files", "account", [FieldUpdate("A1", {"ax_nps": 1})]),
        lambda: store.record_failures(
            "files", "account", [WriteOutcome("A1", ok=False, message="refused")]
        ),
        lambda: store.clear_failures("files", "account", ["A1"]),
        lambda: store.replace_survey_plan("files", [("C1", "A1", "survey")], AT, {"n": 1}),
    ]
    for step in steps:
        before = store.input_version()
        step()
        assert store.input_version() > before


def test_the_settled_state_and_reads_do_not_move_the_version(store: StateStore) -> None:
    before = store.input_version()
    store.set_settled("files", Settled("f" * 64, AT, None, {"nps": 10.0}))
    store.load_accounts("files")
    store.set_cursor("files", "account", "c1")
    assert store.input_version() == before
    assert store.settled("files") == Settled("f" * 64, AT, None, {"nps": 10.0})
    store.set_settled("files", None)
    assert store.settled("files") is None


def _triggers(store: StateStore) -> set[str]:
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            found = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            found = conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        return {name for (name,) in found}


def test_on_sqlite_the_bulk_tables_move_the_version_without_a_trigger(store: StateStore) -> None:
    """SQLite runs a trigger once per row: the tables written a million rows at a time
    move the version from their statements instead (``agent.state.versioning``)."""
    triggered = {name.removeprefix("ax_version_").rpartition("_")[0] for name in _triggers(store)}
    by_statement = set(schema.VERSIONED_BY_STATEMENT)
    assert triggered >= set(schema.VERSIONED) - by_statement
    if store.dialect == "sqlite":
        assert not triggered & by_statement
    else:  # PostgreSQL's triggers run once per statement
        assert triggered >= by_statement


def _insert(store: StateStore, table: Table) -> Any:
    module = sqlite if store.dialect == "sqlite" else postgresql
    return module.insert(table)


@pytest.mark.parametrize("name", schema.VERSIONED_BY_STATEMENT)
def test_a_many_row_insert_moves_the_version_unless_every_key_was_there(
    store: StateStore, name: str
) -> None:
    table = schema.metadata.tables[name]
    rows = [_row(table, n) for n in (1, 2, 3)]
    for n, row in enumerate(rows):  # distinct keys
        for column in table.primary_key.columns:
            if isinstance(row[column.name], str):
                row[column.name] = f"{row[column.name]}-{n}"
    before = store.input_version()
    with store.transaction() as tx:
        tx.connection.execute(_insert(store, table), rows)  # executemany
    moved = store.input_version()
    assert moved > before
    with store.transaction() as tx:
        tx.connection.execute(_insert(store, table).on_conflict_do_nothing(), rows)
    assert store.input_version() == moved


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ("INSERT INTO responses (a) VALUES (?)", "responses"),
        ('INSERT INTO "crm_records" (a) VALUES (?) ON CONFLICT DO NOTHING', "crm_records"),
        ("insert or replace into written_values values (?)", "written_values"),
        ("UPDATE crm_records SET seen_at=? WHERE record_id IN (?)", "crm_records"),
        ("DELETE FROM responses WHERE source = ?", "responses"),
        ("WITH x AS (SELECT 1) UPDATE written_values SET fields = ?", "written_values"),
        ("SELECT * FROM responses WHERE comment = 'update crm_records'", None),
        ("PRAGMA cache_size=-2000", None),
    ],
)
def test_the_table_a_statement_writes(statement: str, table: str | None) -> None:
    assert written_table(statement) == table

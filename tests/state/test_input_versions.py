"""Every write to an input of the cycle moves the input version, in its own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, delete, insert, update
from sqlalchemy.sql.schema import Column, Table

from agent.core.models import Account, Contact, Response
from agent.core.ports import FieldUpdate, WriteOutcome
from agent.state import schema
from agent.state.ops_settled import Settled
from agent.state.store import StateStore

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

"""Revision 0007: the per-field write record becomes one row per record, same answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Engine, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import DBAPIError

from agent.state import migrate, schema
from agent.state.dialect import create_state_engine
from agent.state.store import StateStore

BEFORE = "0006_settled"
T1 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 1, 12, 1, 0, 500, tzinfo=UTC)
T3 = datetime(2025, 3, 1, 12, 2, 0, 999_999, tzinfo=UTC)

#: ``written_values`` as revisions 0001 to 0006 made it: one row per field.
_per_field = Table(
    "written_values",
    MetaData(),
    Column("crm", String(32), primary_key=True),
    Column("object", String(16), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    Column("field", String(255), primary_key=True),
    Column("value", JSON),
    Column("written_at", schema.UtcDateTime(), nullable=False),
)

#: (crm, object, record, field, value, written at)
ROWS = [
    ("files", "account", "a", "f", "amber", T1),  # read at T2 after this write...
    ("files", "account", "a", "g", 42.5, T3),  # ...and before this one
    ("files", "account", "a", "h", None, T1),
    ("files", "account", "b", "f", ["x", "y"], T1),  # read since
    ("files", "account", "c", "f", True, T1),  # never read
    ("files", "account", "c", "g", "2024-05-01T09:30:00+00:00", T3),
    ("files", "contact", "a", "f", -7, T3),
    ("salesforce", "account", "a", "f", 0.1, T1),
]
#: (crm, object, record, seen at)
READS = [("files", "account", "a", T2), ("files", "account", "b", T2)]


@pytest.fixture
def old_engine(state_url: str) -> Iterator[Engine]:
    """A database at revision 0006 holding per-field rows and the records' reads."""
    engine = create_state_engine(state_url)
    migrate.upgrade(engine, BEFORE)
    names = [c.name for c in _per_field.columns]
    with engine.begin() as conn:
        conn.execute(insert(_per_field), [dict(zip(names, row, strict=True)) for row in ROWS])
        conn.execute(insert(schema.crm_records), [_record(*read) for read in READS])
    yield engine
    engine.dispose()


def _record(crm: str, object: str, record_id: str, seen_at: datetime) -> dict[str, Any]:
    payload = {"name": record_id}
    return {"crm": crm, "object": object, "record_id": record_id, "payload": payload,
            "deleted": False, "seen_at": seen_at}  # fmt: skip


def _expected_written(crm: str, object: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for c, o, rid, name, value, _at in ROWS:
        if (c, o) == (crm, object):
            found.setdefault(rid, {})[name] = value
    return found


def _expected_since_read(crm: str, object: str) -> dict[str, dict[str, Any]]:
    seen = {(c, o, rid): at for c, o, rid, at in READS}
    found: dict[str, dict[str, Any]] = {}
    for c, o, rid, name, value, at in ROWS:
        read = seen.get((c, o, rid))
        if (c, o) == (crm, object) and (read is None or at > read):
            found.setdefault(rid, {})[name] = value
    return found


def _per_field_rows(engine: Engine) -> set[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(select(_per_field))
        return {(*row[:4], repr(row.value), row.written_at) for row in rows}


KINDS = [("files", "account"), ("files", "contact"), ("salesforce", "account")]


@pytest.mark.parametrize("kind", KINDS)
def test_the_migrated_record_gives_the_same_answers(
    old_engine: Engine, state_url: str, kind: tuple[str, str]
) -> None:
    migrate.upgrade(old_engine)
    crm, object = kind
    with StateStore.open(state_url) as store:
        assert store.written_values(crm, object) == _expected_written(crm, object)  # type: ignore[arg-type]
        assert store.written_since_read(crm, object) == _expected_since_read(crm, object)  # type: ignore[arg-type]


def test_the_expected_answers_are_not_trivial() -> None:
    assert _expected_since_read("files", "account") == {
        "a": {"g": 42.5},
        "c": {"f": True, "g": "2024-05-01T09:30:00+00:00"},
    }


def test_each_record_holds_its_newest_write_time(old_engine: Engine) -> None:
    migrate.upgrade(old_engine)
    c = schema.written_values.c
    stmt = select(c.record_id, c.written_at).where(c.crm == "files", c.object == "account")
    with old_engine.connect() as conn:
        stamps = {row.record_id: row.written_at for row in conn.execute(stmt)}
    assert stamps == {"a": T3, "b": T1, "c": T3}


def test_the_migrated_table_still_moves_the_input_version(
    old_engine: Engine, state_url: str
) -> None:
    migrate.upgrade(old_engine)
    with StateStore.open(state_url) as store:
        before = store.input_version()
        with store.transaction() as tx:
            tx.connection.execute(schema.written_values.delete())
        assert store.input_version() > before


def test_downgrading_gives_the_per_field_rows_back(old_engine: Engine) -> None:
    before = _per_field_rows(old_engine)
    migrate.upgrade(old_engine)
    migrate.downgrade(old_engine, BEFORE)
    assert _per_field_rows(old_engine) == before


_BROKEN = "('files', 'account', 'b', 'f', '{not json', '2025-01-01')"


def test_a_failed_migration_leaves_the_per_field_rows(sqlite_url: str) -> None:
    names = [c.name for c in _per_field.columns]
    engine = create_state_engine(sqlite_url)
    try:
        migrate.upgrade(engine, BEFORE)
        with engine.begin() as conn:
            conn.execute(insert(_per_field), [dict(zip(names, ROWS[0], strict=True))])
            conn.execute(text(f"INSERT INTO written_values VALUES {_BROKEN}"))
        with pytest.raises(DBAPIError, match="malformed JSON"):
            migrate.upgrade(engine)
        assert migrate.current_revision(engine) == BEFORE
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT record_id, value FROM written_values")).all()
        assert sorted(kept) == [("a", '"amber"'), ("b", "{not json")]
    finally:
        engine.dispose()

"""``plain_rows`` reads what SQLAlchemy reads, value for value, on both dialects: the
million-row loads of a full computation go through it instead of SQLAlchemy's rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from agent.core.models import Account, Contact, Response
from agent.state import schema
from agent.state.dialect import bound_value, plain_rows
from agent.state.store import StateStore

T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_plain_rows_equal_sqlalchemys_rows_for_every_column_type(store: StateStore) -> None:
    store.upsert_records(
        "files",
        "contact",
        [
            Contact(
                "C1",
                "A1",
                "ann@acme.com",
                crm_values={"when": T0, "tags": ("a", "b"), "n": 3, "none": None},
            ),
            Contact("C2", "A1", None, name="Bob"),
        ],
    )
    store.mark_deleted("files", "contact", ["C2"])  # a boolean column that is true
    eastern = timezone(timedelta(hours=-5))
    store.add_responses(
        [
            Response("r1", "ann@acme.com", 3, T0.astimezone(eastern), loop_closed_at=T0),
            Response("r2", None, 10, T0 + timedelta(days=1), driver="Support", source="hook"),
        ]
    )
    with store.engine.connect() as conn:
        for table in (schema.crm_records, schema.responses):
            stmt = select(*table.columns).order_by(*table.primary_key.columns)
            expected = [tuple(row) for row in conn.execute(stmt)]
            plain = list(plain_rows(conn, stmt, chunk=1))  # several fetches
            assert plain == expected
            for row in plain:  # instants aware and in UTC, as SQLAlchemy gives them
                for value in row:
                    if isinstance(value, datetime):
                        assert value.utcoffset() == timedelta(0)
    assert {type(v) for row in plain for v in row} >= {str, int, datetime, type(None)}


def test_responses_load_oldest_first_then_by_source_and_id(store: StateStore) -> None:
    same = T0 + timedelta(hours=1)
    answers = [
        Response("r3", "c@acme.com", 8, same, source="b"),
        Response("r2", "b@acme.com", 7, same, source="a"),
        Response("r1", "a@acme.com", 9, same, source="b"),
        Response("r9", "d@acme.com", 1, T0, source="z"),
    ]
    store.add_responses(answers)
    assert [(r.source, r.response_id) for r in store.load_responses()] == [
        ("z", "r9"),
        ("a", "r2"),
        ("b", "r1"),
        ("b", "r3"),
    ]
    assert store.load_responses(since=same) == [answers[1], answers[2], answers[0]]


def test_mirrored_records_load_as_they_were_stored(store: StateStore) -> None:
    account = Account("A1", "Acme", ("acme.com",), 1200.5, crm_values={"ax_nps": 40, "since": T0})
    contact = Contact("C1", "A1", "ann@acme.com", "Ann", "CEO", "executive", {"x": ("1", "2")})
    store.upsert_records("files", "account", [account])
    store.upsert_records("files", "contact", [contact])
    assert store.load_accounts("files") == [account]
    assert store.load_contacts("files") == [contact]


@settings(max_examples=300, deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.none() | st.just(UTC) | st.timezones(),
    )
)
def test_bulk_path_binds_instants_as_sqlalchemy_does_on_sqlite(instant: datetime) -> None:
    """The bulk writes bind an instant with one C call instead of SQLAlchemy's processor:
    the text SQLite keeps must be the same (a naive value taken as UTC)."""
    engine = create_engine("sqlite://")
    column = schema.responses.c.submitted_at
    with engine.connect() as conn:
        processor = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        assert processor is not None
        assert bound_value(conn, column, instant) == processor(instant)
        assert bound_value(conn, column, None) is None


def test_bulk_rows_and_sqlalchemys_insert_store_the_same_text(tmp_path: Path) -> None:
    """A response stored by the bulk path and one inserted through SQLAlchemy hold the
    same raw values, column for column (the read path parses that text)."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        eastern = timezone(timedelta(hours=-5, minutes=-30))
        answer = Response("r1", "a@acme.com", 3, T0.astimezone(eastern), "Support", "x", "acme", T0)
        store.add_responses([answer])
        with store.engine.begin() as conn:
            row = conn.execute(select(*schema.responses.columns)).one()._asdict()
            conn.execute(schema.responses.insert(), {**row, "response_id": "r2"})
            raw = conn.exec_driver_sql("SELECT * FROM responses ORDER BY response_id").all()
        assert raw[0][2:] == raw[1][2:]
        assert raw[0][5] == "2024-03-01 12:00:00.123456"
    finally:
        store.close()


def test_crm_values_beyond_64_bits_come_back_unchanged(store: StateStore) -> None:
    """A CRM's values are read back from the mirror exactly: a number beyond 64 bits
    stays an integer (a faster JSON decoder, orjson, would read it as a float), a long
    text of digits stays text."""
    values = {"big": 2**64, "negative": -(2**70), "id": "1234567890123456789012", "x": 1.5}
    store.upsert_records("files", "account", [Account("A1", "Acme", crm_values=values)])
    (loaded,) = store.load_accounts("files")
    assert loaded.crm_values == values
    assert type(loaded.crm_values["big"]) is int

"""``plain_rows`` reads what SQLAlchemy reads, value for value, on both dialects: the
million-row loads of a full computation go through it instead of SQLAlchemy's rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from agent.core.models import Account, Contact, Response
from agent.state import schema
from agent.state.dialect import plain_rows
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

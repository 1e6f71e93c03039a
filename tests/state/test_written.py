"""Write-back bookkeeping: last written values as JSON, failures counted per record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from agent.core.models import Account
from agent.core.ports import FieldUpdate, WriteOutcome
from agent.state.codec import written_stamp
from agent.state.ops_base import BATCH_ROWS, OpsBase
from agent.state.schema import written_values
from agent.state.store import StateStore


def test_written_values_are_stored_as_plain_json(store: StateStore) -> None:
    when = datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    updates = [
        FieldUpdate(
            "001A",
            {
                "AX_NPS__c": 42.5,
                "AX_Responses__c": 7,
                "AX_At_Risk__c": False,
                "AX_Band__c": "amber",
                "AX_Tiers__c": ("executive", "frontline"),
                "AX_Last_Response__c": when,
                "AX_Empty__c": None,
            },
        ),
        FieldUpdate("001B", {"AX_NPS__c": -100}),
    ]
    assert store.record_written("salesforce", "account", updates) == 8
    assert store.written_values("salesforce", "account") == {
        "001A": {
            "AX_NPS__c": 42.5,
            "AX_Responses__c": 7,
            "AX_At_Risk__c": False,
            "AX_Band__c": "amber",
            "AX_Tiers__c": ["executive", "frontline"],
            "AX_Last_Response__c": "2024-05-01T09:30:00+00:00",
            "AX_Empty__c": None,
        },
        "001B": {"AX_NPS__c": -100},
    }


def test_a_newer_write_replaces_the_value_and_others_stay(store: StateStore) -> None:
    store.record_written("hubspot", "contact", [FieldUpdate("c1", {"a": 1, "b": "x"})])
    store.record_written("hubspot", "contact", [FieldUpdate("c1", {"a": 2})])
    store.record_written("hubspot", "account", [FieldUpdate("c1", {"a": 99})])
    store.record_written("salesforce", "contact", [FieldUpdate("c1", {"a": 98})])
    assert store.written_values("hubspot", "contact") == {"c1": {"a": 2, "b": "x"}}


def test_written_values_can_be_read_for_some_records(store: StateStore) -> None:
    updates = [FieldUpdate(f"r{i}", {"f": i}) for i in range(BATCH_ROWS + 3)]
    store.record_written("files", "account", updates)
    wanted = ["r0", f"r{BATCH_ROWS + 2}", "missing"]
    assert store.written_values("files", "account", wanted) == {
        "r0": {"f": 0},
        f"r{BATCH_ROWS + 2}": {"f": BATCH_ROWS + 2},
    }
    assert len(store.written_values("files", "account")) == BATCH_ROWS + 3


def test_failures_count_attempts_and_keep_the_last_error(store: StateStore) -> None:
    first = [
        WriteOutcome(
            "001A", ok=False, error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="no"
        ),
        WriteOutcome("001B", ok=True),
    ]
    assert store.record_failures("salesforce", "account", first) == 1
    second = [WriteOutcome("001A", ok=False, error_code="UNABLE_TO_LOCK_ROW", message="locked")]
    store.record_failures("salesforce", "account", second)
    failures = store.failed_records("salesforce", "account")
    assert failures == {"001A": ("UNABLE_TO_LOCK_ROW", "locked", 2)}
    code, message, attempts = failures["001A"]
    assert attempts == 2
    assert failures["001A"].code == code == "UNABLE_TO_LOCK_ROW"
    assert message == "locked"


def test_cleared_failures_are_forgotten(store: StateStore) -> None:
    store.record_failures(
        "hubspot",
        "contact",
        [WriteOutcome("c1", ok=False, error_code="E"), WriteOutcome("c2", ok=False)],
    )
    assert store.clear_failures("hubspot", "contact", ["c1", "c9"]) == 1
    assert set(store.failed_records("hubspot", "contact")) == {"c2"}
    store.record_failures("hubspot", "contact", [WriteOutcome("c1", ok=False)])
    assert store.failed_records("hubspot", "contact")["c1"].attempts == 1
    assert store.failed_records("salesforce", "contact") == {}


def test_clearing_touches_only_its_own_crm_and_object(store: StateStore) -> None:
    store.record_failures("hubspot", "contact", [WriteOutcome("c1", ok=False)])
    assert store.clear_failures("salesforce", "contact", ["c1"]) == 0
    assert store.clear_failures("hubspot", "account", iter(["c1"])) == 0
    assert set(store.failed_records("hubspot", "contact")) == {"c1"}
    assert store.clear_failures("hubspot", "contact", iter(["c0", "c1"])) == 1
    assert store.failed_records("hubspot", "contact") == {}


def test_written_at_is_aware_utc(store: StateStore) -> None:
    store.record_written("files", "account", [FieldUpdate("a", {"f": 1})])
    with store.reading() as tx:
        stamp: datetime = tx.connection.execute(select(written_values.c.written_at)).scalar_one()
    assert stamp.tzinfo is not None
    assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=1)


T1, T2, T3 = (
    datetime(2025, 3, 1, 12, minute, 0, micro, tzinfo=UTC)
    for minute, micro in ((0, 0), (1, 500), (2, 999_999))
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The instant the store stamps writes with: set ``clock[0]``."""
    now = [T1]
    monkeypatch.setattr(OpsBase, "_now", staticmethod(lambda: now[0]))
    return now


def _read_at(store: StateStore, when: datetime, *ids: str) -> None:
    with store.transaction() as tx:
        tx.stamp_records("files", "account", [Account(i, i) for i in ids], when)


def test_each_field_is_newer_than_the_read_on_its_own(
    store: StateStore, clock: list[datetime]
) -> None:
    store.record_written("files", "account", [FieldUpdate("a", {"f": 1, "g": 1})])
    store.record_written("files", "account", [FieldUpdate("b", {"f": 1})])
    _read_at(store, T2, "a", "b")
    clock[0] = T3
    store.record_written("files", "account", [FieldUpdate("a", {"g": 2})])
    store.record_written("files", "account", [FieldUpdate("c", {"f": 3})])  # never read
    assert store.written_since_read("files", "account") == {"a": {"g": 2}, "c": {"f": 3}}
    assert store.written_values("files", "account") == {
        "a": {"f": 1, "g": 2},
        "b": {"f": 1},
        "c": {"f": 3},
    }


def test_a_write_stamped_earlier_keeps_the_newer_field_newer(
    store: StateStore, clock: list[datetime]
) -> None:
    clock[0] = T3
    store.record_written("files", "account", [FieldUpdate("a", {"f": 1})])
    clock[0] = T1  # the clock went back
    store.record_written("files", "account", [FieldUpdate("a", {"g": 1})])
    _read_at(store, T2, "a")
    assert store.written_since_read("files", "account") == {"a": {"f": 1}}


def test_a_record_read_to_the_microsecond_of_its_write_is_read(
    store: StateStore, clock: list[datetime]
) -> None:
    clock[0] = T2
    store.record_written("files", "account", [FieldUpdate("a", {"f": 1})])
    _read_at(store, T2, "a")
    assert store.written_since_read("files", "account") == {}
    _read_at(store, T2 - timedelta(microseconds=1), "a")
    assert store.written_since_read("files", "account") == {"a": {"f": 1}}


def test_a_merge_keeps_the_other_fields_and_their_times(
    store: StateStore, clock: list[datetime]
) -> None:
    store.record_written("files", "account", [FieldUpdate("a", {"f": "x", "g": None})])
    clock[0] = T3
    updates = [FieldUpdate("a", {"g": (1, "two")}), FieldUpdate("b", {"f": 0.1})]
    assert store.record_written("files", "account", updates) == 2
    with store.reading() as tx:
        rows = tx.connection.execute(select(written_values.c.record_id, written_values.c.fields))
        stored = {row.record_id: row.fields for row in rows}
    assert stored == {
        "a": {"f": ["x", "2025-03-01T12:00:00.000000Z"], "g": [[1, "two"], written_stamp(T3)]},
        "b": {"f": [0.1, "2025-03-01T12:02:00.999999Z"]},
    }


def test_a_rolled_back_write_leaves_the_record_as_it_was(store: StateStore) -> None:
    store.record_written("files", "account", [FieldUpdate("a", {"f": 1, "g": 1})])
    with pytest.raises(RuntimeError, match="batch after"):
        _write_then_fail(store, [FieldUpdate("a", {"f": 2}), FieldUpdate("b", {"f": 1})])
    assert store.written_values("files", "account") == {"a": {"f": 1, "g": 1}}


def _write_then_fail(store: StateStore, updates: list[FieldUpdate]) -> None:
    with store.transaction() as tx:
        tx.record_written("files", "account", updates)
        raise RuntimeError("the CRM batch after it failed")


def test_a_record_without_fields_is_not_remembered(store: StateStore) -> None:
    updates = [FieldUpdate("a", {}), FieldUpdate("b", {"f": 1}), FieldUpdate("b", {})]
    assert store.record_written("files", "account", updates) == 1
    assert store.written_values("files", "account") == {"b": {"f": 1}}


def test_a_write_beyond_one_statement_merges_a_repeated_record_once(store: StateStore) -> None:
    many = [FieldUpdate(f"r{i:05}", {"f": i}) for i in range(BATCH_ROWS + 1)]
    updates = [FieldUpdate("a", {"f": 1, "g": 1}), *many, FieldUpdate("a", {"g": 2, "h": 3})]
    assert store.record_written("files", "account", updates) == BATCH_ROWS + 1 + 3
    written = store.written_values("files", "account")
    assert len(written) == BATCH_ROWS + 2
    assert written["a"] == {"f": 1, "g": 2, "h": 3}
    assert written[f"r{BATCH_ROWS:05}"] == {"f": BATCH_ROWS}

"""The CRM mirror keeps every field of accounts and contacts, per CRM and object."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from agent.core.models import Account, Contact
from agent.core.ports import FieldUpdate
from agent.state import schema
from agent.state.errors import MirrorBusyError
from agent.state.ops_base import BATCH_ROWS
from agent.state.ops_mirror import replacing_stream
from agent.state.store import StateStore

ACME = Account(
    id="001A",
    name="Acme Ünited",
    domains=("acme.com", "acme.co.uk"),
    revenue=1234567.89,
    revenue_potential=2_000_000.0,
    owner_email="owner@vendor.com",
    attributes={"segment": "Enterprise", "region": "EMEA"},
    crm_values={
        "AX_NPS__c": 42.5,
        "AX_Responses__c": 7,
        "AX_At_Risk__c": True,
        "AX_Band__c": "amber",
        "AX_Last_Response__c": datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
        "AX_Review__c": date(2024, 6, 30),
        "AX_Tiers__c": ("executive", "management"),
        "AX_Empty__c": None,
        "AX_Nested__c": {"a": [1, "x", None]},
    },
)
GLOBEX = Account(id="001B", name="Globex")
ALICE = Contact(
    id="003A",
    account_id="001A",
    email="Alice@Acme.com",
    name="Alice Smith",
    title="VP Operations",
    crm_tier="executive",
    crm_values={"AX_Tier__c": "executive", "AX_Last_Score__c": 9},
)
BOB = Contact(id="003B", account_id="001B")


def test_accounts_and_contacts_round_trip_every_field(store: StateStore) -> None:
    store.upsert_records("salesforce", "account", [GLOBEX, ACME])
    store.upsert_records("salesforce", "contact", [ALICE, BOB])
    loaded = store.load_accounts("salesforce")
    assert loaded == [ACME, GLOBEX]  # in id order
    assert loaded[0].crm_values["AX_Tiers__c"] == ("executive", "management")
    last_response = loaded[0].crm_values["AX_Last_Response__c"]
    assert isinstance(last_response, datetime)
    assert last_response.utcoffset() == timedelta(hours=2)
    assert isinstance(loaded[0].domains, tuple)
    assert store.load_contacts("salesforce") == [ALICE, BOB]


def test_mirrors_are_separate_per_crm_and_object(store: StateStore) -> None:
    store.upsert_records("salesforce", "account", [ACME])
    store.upsert_records("hubspot", "account", [GLOBEX])
    assert store.load_accounts("salesforce") == [ACME]
    assert store.load_accounts("hubspot") == [GLOBEX]
    assert store.load_contacts("salesforce") == []


def test_an_upsert_replaces_a_changed_record(store: StateStore) -> None:
    store.upsert_records("files", "account", [ACME])
    renamed = Account(id=ACME.id, name="Acme Corp", revenue=10.0)
    assert store.upsert_records("files", "account", [renamed]) == 1
    assert store.load_accounts("files") == [renamed]


def test_a_repeated_id_in_one_call_keeps_the_last(store: StateStore) -> None:
    first, last = Account("x", "First"), Account("x", "Last")
    assert store.upsert_records("files", "account", [first, last]) == 1
    assert store.load_accounts("files") == [last]


def test_deleted_records_disappear_and_come_back_when_seen_again(store: StateStore) -> None:
    store.upsert_records("hubspot", "contact", [ALICE, BOB])
    assert store.mark_deleted("hubspot", "contact", ["003A", "nope"]) == 1
    assert store.mark_deleted("hubspot", "contact", ["003A"]) == 0
    assert store.load_contacts("hubspot") == [BOB]
    assert store.count_records("hubspot", "contact") == 1
    store.upsert_records("hubspot", "contact", [ALICE])
    assert store.load_contacts("hubspot") == [ALICE, BOB]


def test_a_full_read_marks_everything_it_did_not_return_deleted(store: StateStore) -> None:
    store.upsert_records("files", "account", [ACME, GLOBEX])
    store.upsert_records("files", "contact", [ALICE])
    initech = Account("001C", "Initech")
    # Globex read again as it was: neither changed nor deleted; Initech new, Acme gone
    assert store.replace_all("files", "account", [GLOBEX, initech]) == (1, 1)
    assert store.load_accounts("files") == [GLOBEX, initech]
    assert store.load_contacts("files") == [ALICE]  # other objects untouched
    assert store.replace_all("files", "account", []) == (0, 2)
    assert store.load_accounts("files") == []


def test_a_full_read_larger_than_a_batch(store: StateStore) -> None:
    many = [
        Account(f"acc-{i:06d}", f"Account {i}", revenue=float(i)) for i in range(BATCH_ROWS * 2 + 7)
    ]
    store.upsert_records("files", "account", [Account("gone", "Gone")])
    assert store.replace_all("files", "account", many) == (len(many), 1)
    loaded = store.load_accounts("files")
    assert len(loaded) == len(many)
    assert loaded[-1] == many[-1]
    renamed = [*many[:-1], Account(many[-1].id, "Renamed", revenue=many[-1].revenue)]
    assert store.replace_all("files", "account", renamed) == (1, 0)  # one changed record
    assert store.load_accounts("files")[-1].name == "Renamed"


def test_a_full_read_inside_a_transaction_is_atomic(store: StateStore) -> None:
    store.upsert_records("files", "account", [ACME])
    with pytest.raises(RuntimeError, match="crash"):
        _replace_then_crash(store)
    assert store.load_accounts("files") == [ACME]


def _replace_then_crash(store: StateStore) -> None:
    with store.transaction() as tx:
        tx.replace_all("files", "account", [GLOBEX])
        raise RuntimeError("crash")


def test_wrong_object_kinds_are_refused(store: StateStore) -> None:
    with pytest.raises(TypeError, match="Contact cannot be stored as a CRM account"):
        store.upsert_records("files", "account", [ALICE])
    with pytest.raises(ValueError, match="account or contact"):
        store.upsert_records("files", "deal", [ACME])  # type: ignore[arg-type]


def test_values_json_cannot_hold_are_refused_by_name(store: StateStore) -> None:
    odd = Account("odd", "Odd", crm_values={"AX_Blob__c": b"bytes"})
    with pytest.raises(TypeError, match="AX_Blob__c"):
        store.upsert_records("files", "account", [odd])


def test_ids_load_in_code_point_order_on_every_dialect(store: StateStore) -> None:
    ids = ["b", "B", "a", "_x", "Z", "ä", "10", "9"]
    store.upsert_records("files", "account", [Account(i, i) for i in ids])
    assert [a.id for a in store.load_accounts("files")] == sorted(ids)


def test_instants_in_crm_values_keep_their_offset(store: StateStore) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    store.upsert_records("files", "contact", [Contact("c", "a", crm_values={"t": when})])
    assert store.load_contacts("files")[0].crm_values["t"] == when


def _changed_at(store: StateStore, record_id: str) -> datetime:
    c = schema.crm_records.c
    with store.reading() as tx:
        stmt = select(c.changed_at).where(c.record_id == record_id)
        found: datetime = tx.connection.execute(stmt).scalar_one()
    return found


def _read(store: StateStore, records: list[Account], **notes: Any) -> int:
    """``records`` read again, as a CRM sync stores a page (``own_values``, ``on_changed``)."""
    with store.transaction() as tx:
        return tx.upsert_records("files", "account", records, **notes)


def test_the_crms_own_values_read_back_are_stored_but_are_no_change(store: StateStore) -> None:
    store.upsert_records("files", "account", [ACME])
    first = _changed_at(store, ACME.id)
    echoed = replace(ACME, crm_values={**ACME.crm_values, "AX_NPS__c": 50.0, "AX_New__c": "x"})
    assert _read(store, [echoed], own_values=True) == 0
    assert store.load_accounts("files") == [echoed]
    assert _changed_at(store, ACME.id) == first
    renamed = replace(echoed, name="Acme Corp", crm_values={})
    assert _read(store, [renamed], own_values=True) == 1
    assert store.load_accounts("files") == [renamed]
    assert _changed_at(store, ACME.id) > first


def test_values_read_back_without_the_crms_word_are_a_change(store: StateStore) -> None:
    store.upsert_records("files", "contact", [ALICE])
    first = _changed_at(store, ALICE.id)
    typed = replace(ALICE, crm_values={"AX_Tier__c": "typed over"})
    assert store.upsert_records("files", "contact", [typed]) == 1
    assert _changed_at(store, ALICE.id) > first


def test_a_full_read_of_own_values_counts_only_real_changes(store: StateStore) -> None:
    store.replace_all("files", "account", [ACME, GLOBEX])
    first = _changed_at(store, GLOBEX.id)
    back = [replace(ACME, revenue=1.0), replace(GLOBEX, crm_values={"AX_NPS__c": 10})]
    assert store.replace_all("files", "account", back, own_values=True) == (1, 0)
    assert _changed_at(store, GLOBEX.id) == first
    assert store.load_accounts("files") == back


def test_a_deletion_and_a_return_are_changes(store: StateStore) -> None:
    store.upsert_records("files", "account", [ACME, GLOBEX])
    first = _changed_at(store, GLOBEX.id)
    store.replace_all("files", "account", [ACME])
    deleted = _changed_at(store, GLOBEX.id)
    assert deleted > first
    assert _read(store, [GLOBEX], own_values=True) == 1
    assert _changed_at(store, GLOBEX.id) > deleted


def test_a_record_read_as_held_after_the_agent_wrote_to_it_is_a_change(store: StateStore) -> None:
    """The CRM gives back the record as it was before the agent's write (a reverted
    value, a restored file): it no longer holds what the agent wrote."""
    store.upsert_records("files", "account", [ACME, GLOBEX])
    first = _changed_at(store, ACME.id)
    with store.transaction() as tx:
        tx.record_written("files", "account", [FieldUpdate(ACME.id, {"AX_NPS__c": 50.0})])
    told: list[str] = []
    assert _read(store, [ACME, GLOBEX], on_changed=told.extend) == 1
    assert told == [ACME.id]
    assert _changed_at(store, ACME.id) > first
    assert store.upsert_records("files", "account", [ACME, GLOBEX]) == 0  # read since


def test_a_full_read_knows_the_agents_own_values_by_what_it_wrote(store: StateStore) -> None:
    """Without the CRM's word, each differing field must hold the agent's last write."""
    store.replace_all("sf", "account", [ACME, GLOBEX])
    first = _changed_at(store, ACME.id)
    with store.transaction() as tx:
        tx.record_written("sf", "account", [FieldUpdate(ACME.id, {"AX_NPS__c": 50.0})])
        tx.record_written("sf", "account", [FieldUpdate(GLOBEX.id, {"AX_NPS__c": 10.0})])
    back = [
        replace(ACME, crm_values={**ACME.crm_values, "AX_NPS__c": "50"}),
        replace(GLOBEX, crm_values={**GLOBEX.crm_values, "AX_NPS__c": 11.0}),
    ]

    def echo(name: str, read: object, written: object) -> bool:
        return name == "AX_NPS__c" and float(str(read)) == written

    echoed: list[str] = []
    changed, deleted = store.replace_all("sf", "account", back, echo=echo, on_echoed=echoed.extend)
    assert (changed, deleted, echoed) == (1, 0, [ACME.id])
    assert _changed_at(store, ACME.id) == first
    assert store.load_accounts("sf") == back


def test_a_write_the_read_back_does_not_hold_is_a_change_beside_echoed_values(
    store: StateStore,
) -> None:
    """The agent wrote two fields after the last read; the CRM gives back one of them,
    and the other as it held it before the write (reverted, or the write never took):
    the record does not hold what the agent wrote, so it is a change, not an echo."""
    store.replace_all("sf", "account", [GLOBEX])
    with store.transaction() as tx:
        tx.record_written("sf", "account", [FieldUpdate(GLOBEX.id, {"A": 1.0, "B": 2.0})])

    def echo(_name: str, read: object, other: object) -> bool:
        return read == other

    halfway = replace(GLOBEX, crm_values={"A": 1.0})  # B as held: absent
    assert store.replace_all("sf", "account", [halfway], echo=echo) == (1, 0)
    both = replace(GLOBEX, crm_values={"A": 1.0, "B": 2.0})
    echoed: list[str] = []
    assert store.replace_all("sf", "account", [both], echo=echo, on_echoed=echoed.extend) == (0, 0)
    assert echoed == [GLOBEX.id]  # the write is older than this read now, and held


def test_a_reader_of_the_whole_mirror_never_sees_a_full_read_halfway(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full read commits piece by piece; between two pieces the mirror holds the new
    records of the first beside the old ones of the next, and none of the read's
    deletions. ``load_mirror`` waits for the end, and says so when it does not come."""
    store.replace_all("sf", "account", [ACME, GLOBEX])
    monkeypatch.setattr("agent.state.pieces.PIECE_ROWS", 1)
    renamed = [replace(ACME, name="Acme New"), replace(GLOBEX, name="Globex New")]
    seen: list[str] = []

    def between_pieces(_ids: list[str]) -> None:
        try:
            store.load_mirror("sf", wait=0)
        except MirrorBusyError as exc:
            seen.append(str(exc))

    store.replace_all("sf", "account", renamed, on_changed=between_pieces)
    assert len(seen) == 2
    assert "halfway through a full read of its accounts" in seen[1]
    assert store.load_mirror("sf", wait=0) == (renamed, [])
    assert not [key for key in store.all_cursors() if key[1].endswith(":replacing")]


def test_a_full_read_stopped_halfway_keeps_readers_out_until_one_ends(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.replace_all("sf", "account", [ACME, GLOBEX])
    monkeypatch.setattr("agent.state.pieces.PIECE_ROWS", 1)

    def crash(ids: list[str]) -> None:
        if ids == [GLOBEX.id]:
            raise RuntimeError("the process stopped")

    half = [replace(ACME, name="Half"), replace(GLOBEX, name="Never stored")]
    with pytest.raises(RuntimeError):
        store.replace_all("sf", "account", half, on_changed=crash)
    assert [a.name for a in store.load_accounts("sf")] == ["Half", "Globex"]  # mixed
    with pytest.raises(MirrorBusyError, match=r"waited 0 s.*run --once` completes it"):
        store.load_mirror("sf", wait=0)
    store.replace_all("sf", "account", [ACME])  # the next full read ends
    assert store.load_mirror("sf", wait=0) == ([ACME], [])


def test_a_reader_waits_for_the_read_under_way(store: StateStore) -> None:
    store.replace_all("sf", "account", [ACME])
    store.set_cursor("sf", replacing_stream("account"), "2025-06-01T09:00:00+00:00")
    ended = threading.Timer(0.3, store.clear_cursor, ("sf", replacing_stream("account")))
    ended.start()
    started = time.monotonic()
    try:
        assert store.load_mirror("sf", wait=10) == ([ACME], [])
    finally:
        ended.join()
    assert 0.3 <= time.monotonic() - started < 5

"""Incremental reads: search within [cursor - overlap, start], keyset-paged, plus deletions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectors.hubspot import HubSpotConnector
from connectors.hubspot.cursor import parse_cursor
from tests.hubspot import wire
from tests.hubspot.fakeportal import FakePortal

MakeConnector = Callable[..., HubSpotConnector]
HOUR = 3_600_000


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _records(batches: list) -> list[str]:
    return [r.id for b in batches for r in b.records]


def _deleted(batches: list) -> list[str]:
    return [d for b in batches for d in b.deleted_ids]


def _full_then_tick(portal: FakePortal, connector: HubSpotConnector) -> str:
    cursor = list(connector.read_accounts(None))[-1].cursor
    portal.tick(HOUR)
    assert cursor is not None
    return cursor


def test_changed_companies_are_searched_within_the_overlapping_window(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    old = portal.add_company(name="Old")
    portal.tick(HOUR)
    recent = portal.add_company(name="Recent")
    connector = make_connector()
    cursor = _full_then_tick(portal, connector)
    changed = portal.add_company(name="Changed")

    batches = list(connector.read_accounts(cursor))

    # "Recent" was modified in the second the full read began: not yet marked seen, so
    # read again inside the overlap (inclusive) and passed on.
    assert _records(batches) == [recent, changed]
    assert old not in _records(batches)
    [search] = portal.calls("POST", "/crm/v3/objects/companies/search")
    low = _ms(parse_cursor(json.loads(cursor)["since"]))
    assert low == portal.stores["companies"].live[recent].updated_ms - 300_000
    assert search.body == {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "BETWEEN",
                        "value": str(low),
                        "highValue": str(portal.now_ms),
                    },
                    {"propertyName": "hs_object_id", "operator": "GT", "value": "0"},
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": search.body["properties"],
        "limit": 200,
        "after": "0",
    }
    assert {"name", "annualrevenue", "hubspot_owner_id", "ax_health_score"} <= set(
        search.body["properties"]
    )
    assert batches[-1].cursor is not None
    assert json.loads(batches[-1].cursor)["since"] == wire.iso(portal.now_ms - 300_000)


def test_contacts_search_on_lastmodifieddate(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    cursor = list(connector.read_contacts(None))[-1].cursor
    list(connector.read_contacts(cursor))
    [search] = portal.calls("POST", "/crm/v3/objects/contacts/search")
    assert search.body["filterGroups"][0]["filters"][0]["propertyName"] == "lastmodifieddate"


def test_keyset_paging_never_pages_by_offset(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector(search_page_size=2)
    cursor = _full_then_tick(portal, connector)
    ids = [portal.add_company(name=f"C{i}") for i in range(5)]

    assert _records(list(connector.read_accounts(cursor))) == ids

    calls = portal.calls("POST", "/crm/v3/objects/companies/search")
    assert [c.body["filterGroups"][0]["filters"][1]["value"] for c in calls] == [
        "0",
        ids[1],
        ids[3],
    ]
    assert {c.body["after"] for c in calls} == {"0"}
    assert portal.max_search_offset == 0


def test_more_changes_than_the_search_cap_are_all_read(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    cursor = _full_then_tick(portal, connector)
    for i in range(10_050):
        portal.add("companies", {"name": f"C{i}"})

    batches = list(connector.read_accounts(cursor))

    assert len(_records(batches)) == 10_050
    assert len(portal.calls("POST", "/crm/v3/objects/companies/search")) == 51  # ceil(10,050 / 200)


def test_a_change_the_index_had_not_seen_is_caught_by_the_overlap(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    cursor = _full_then_tick(portal, connector)
    late = portal.add_company(name="Late")
    portal.unindexed.add(late)
    portal.tick(5_000)
    seen = portal.add_company(name="Seen")
    first = list(connector.read_accounts(cursor))
    assert _records(first) == [seen]

    portal.unindexed.clear()
    portal.tick(60_000)
    assert late in _records(list(connector.read_accounts(first[-1].cursor)))


def test_without_overlap_a_late_indexed_change_would_be_missed(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector(incremental_overlap_s=0)
    cursor = _full_then_tick(portal, connector)
    late = portal.add_company(name="Late")
    portal.unindexed.add(late)
    portal.tick(5_000)
    portal.add_company(name="Seen")
    first = list(connector.read_accounts(cursor))
    portal.unindexed.clear()
    assert late not in _records(list(connector.read_accounts(first[-1].cursor)))


def test_archived_since_the_window_and_merged_away_records_are_deleted(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    long_gone = portal.add_company(name="LongGone")
    portal.archive("companies", long_gone)
    portal.tick(HOUR)
    keep, gone, loser = (portal.add_company(name=n) for n in ("Keep", "Gone", "Loser"))
    connector = make_connector()
    cursor = _full_then_tick(portal, connector)
    portal.tick(HOUR)
    portal.archive("companies", gone)
    portal.merge("companies", keep, loser)

    batches = list(connector.read_accounts(cursor))

    assert keep in _records(batches)
    assert sorted(_deleted(batches)) == sorted([gone, loser])
    [archived_call] = portal.calls("GET", "/crm/v3/objects/companies")[1:]
    assert archived_call.query["archived"] == ["true"]


def test_changed_contacts_get_their_company_from_the_v4_batch_read(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    acme, other = portal.add_company(name="Acme"), portal.add_company(name="Other")
    connector = make_connector(association_batch_size=3)
    cursor = list(connector.read_contacts(None))[-1].cursor
    portal.tick(HOUR)
    ids = [
        portal.add_contact(company=acme, others=[other], email=f"c{i}@acme.com") for i in range(4)
    ]
    loner = portal.add_contact(email="loner@nowhere.com")

    contacts = {c.id: c for b in connector.read_contacts(cursor) for c in b.records}

    assert {i: contacts[i].account_id for i in ids} == dict.fromkeys(ids, acme)
    assert contacts[loner].account_id == ""
    calls = portal.calls("POST", "/crm/v4/associations/contacts/companies/batch/read")
    assert [c.body for c in calls] == [
        {"inputs": [{"id": i} for i in ids[:3]]},
        {"inputs": [{"id": i} for i in [ids[3], loner]]},
    ]


def test_association_reads_fill_batches_of_a_thousand(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    cursor = list(connector.read_contacts(None))[-1].cursor
    portal.tick(HOUR)
    for i in range(1_201):
        portal.add("contacts", {"email": f"c{i}@x.com"})
    list(connector.read_contacts(cursor))
    calls = portal.calls("POST", "/crm/v4/associations/contacts/companies/batch/read")
    assert [len(c.body["inputs"]) for c in calls] == [1000, 201]
    assert len(portal.calls("POST", "/crm/v3/objects/contacts/search")) == 7  # ceil(1,201 / 200)


def test_a_record_returned_twice_is_passed_on_once(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector(search_page_size=2)
    cursor = _full_then_tick(portal, connector)
    a, b, c = (portal.add_company(name=n) for n in "abc")
    store = portal.stores["companies"].live
    render = [portal.render("companies", store[i], ["name"]) for i in (a, b, c)]
    portal.fail(
        "POST", "/crm/v3/objects/companies/search", 200, body={"total": 3, "results": render[:2]}
    )
    portal.fail(
        "POST", "/crm/v3/objects/companies/search", 200, body={"total": 2, "results": render[1:]}
    )
    assert _records(list(connector.read_accounts(cursor))) == [a, b, c]


def test_the_cursor_never_passes_the_reads_start(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    future = portal.add_company(name="Skewed")
    portal.stores["companies"].live[future].updated_ms = portal.now_ms + HOUR
    start = datetime.fromtimestamp(portal.now_ms / 1000, UTC)
    cursor = list(make_connector().read_accounts(None))[-1].cursor
    assert cursor is not None
    mark = json.loads(cursor)
    assert parse_cursor(mark["since"]) == start - timedelta(seconds=300)
    assert future not in mark["seen"]  # stamped after the read began: not settled


def test_an_unreadable_cursor_is_refused_with_its_value(make_connector: MakeConnector) -> None:
    with pytest.raises(ValueError, match="not-a-time"):
        list(make_connector().read_accounts("not-a-time"))

"""Reading accounts and contacts: mapping, paging, incremental cursors, deletions, bulk."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import responses
from structlog.testing import capture_logs

from agent.core.models import Account, Contact
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.errors import SalesforceFatalError
from tests.salesforce.fake import FakeSalesforce


def _seed(fake: FakeSalesforce, accounts: int = 3, contacts_each: int = 2) -> list[str]:
    owner = fake.org.insert("User", {"Email": "owner@vendor.example"})
    ids = []
    for i in range(accounts):
        aid = fake.org.insert(
            "Account",
            {
                "Name": f"Acme {i}",
                "Website": f"https://www.acme{i}.example",
                "AnnualRevenue": 1000.0 * (i + 1),
                "OwnerId": owner,
            },
        )
        ids.append(aid)
        for j in range(contacts_each):
            fake.org.insert(
                "Contact",
                {
                    "AccountId": aid,
                    "Email": f"c{j}@acme{i}.example",
                    "Name": f"C {j}",
                    "Title": "CEO",
                },
            )
    return ids


def _all(batches) -> tuple[list, list[str], list[str | None]]:
    records, deleted, cursors = [], [], []
    for batch in batches:
        records.extend(batch.records)
        deleted.extend(batch.deleted_ids)
        cursors.append(batch.cursor)
    return records, deleted, cursors


def test_full_read_maps_accounts_with_owner_revenue_and_domains(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ids = _seed(fake)
    fake.org.tick(1)
    accounts, deleted, cursors = _all(connector.read_accounts(None))
    assert [a.id for a in accounts] == ids
    first = accounts[0]
    assert isinstance(first, Account)
    assert first.name == "Acme 0"
    assert first.domains == ("https://www.acme0.example",)
    assert first.revenue == 1000.0
    assert first.owner_email == "owner@vendor.example"
    assert first.revenue_potential is None
    assert first.crm_values["AX_NPS__c"] is None
    assert deleted == []
    # The next read starts the overlap before this one began (the org's clock), and
    # knows what it already saw there.
    mark = json.loads(cursors[-1])
    assert mark["since"] == "2023-12-31T23:55:01.000Z"
    assert mark["seen"] == dict.fromkeys(ids, "2024-01-01T00:00:00.000Z")


def test_full_read_of_contacts_maps_fields_and_tier(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    from tests.salesforce.fake import FakeField

    fake.org.add_field("Contact", FakeField("Level__c", "picklist", custom=True))
    aid = fake.org.insert("Account", {"Name": "A"})
    cid = fake.org.insert(
        "Contact",
        {
            "AccountId": aid,
            "Email": "x@a.example",
            "Name": "X Y",
            "Title": "VP",
            "Level__c": "C-Level",
        },
    )
    orphan = fake.org.insert("Contact", {"AccountId": None, "Email": "o@a.example", "Name": "O"})
    connector = build(tier_field="Level__c")
    contacts, deleted, _ = _all(connector.read_contacts(None))
    assert contacts == [
        Contact(
            id=cid,
            account_id=aid,
            email="x@a.example",
            name="X Y",
            title="VP",
            crm_tier="C-Level",
            crm_values={
                "AX_Tier__c": None,
                "AX_Last_Score__c": None,
                "AX_NPS_Category__c": None,
                "AX_Last_Response_At__c": None,
            },
        )
    ]
    assert deleted == [orphan]  # a contact without an account counts for none


def test_configured_revenue_potential_and_extra_fields_are_read(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    from tests.salesforce.fake import FakeField

    fake.org.add_field("Account", FakeField("ARR__c", "currency", custom=True))
    fake.org.add_field("Account", FakeField("Potential__c", "double", custom=True))
    fake.org.add_field("Account", FakeField("Domains__c", custom=True))
    fake.org.insert(
        "Account",
        {
            "Name": "A",
            "ARR__c": "2500.5",
            "Potential__c": 9000,
            "Industry": "Retail",
            "Website": None,
            "Domains__c": "a.example; b.example",
        },
    )
    connector = build(
        revenue_field="ARR__c",
        potential_field="Potential__c",
        extra_fields=["Industry"],
        domain_fields=["Website", "Domains__c"],
    )
    (account,), _, _ = _all(connector.read_accounts(None))
    assert account.revenue == 2500.5
    assert account.revenue_potential == 9000.0
    assert account.attributes == {"Industry": "Retail"}
    assert account.domains == ("a.example", "b.example")


def test_pages_are_chained_in_one_composite_request_five_at_most(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    for i in range(4500):
        fake.org.insert("Account", {"Name": f"A{i}"})
    batches = list(connector.read_accounts(None))
    assert [len(b.records) for b in batches] == [2000, 2000, 500]
    assert [b.cursor is not None for b in batches] == [False, False, True]
    assert len({a.id for b in batches for a in b.records}) == 4500
    assert fake.calls["composite"] == 1
    assert fake.calls["query"] == 0
    assert fake.subrequests["query"] == 3  # the chain ends where the result does
    assert connector.client.counter.by_kind["query"] == 1
    assert connector.client.counter.subrequests["query"] == 5
    [request] = [json.loads(c.request.body) for c in mock.calls if c.request.body]
    urls = [s["url"] for s in request["compositeRequest"]]
    assert urls[0].startswith("/services/data/v62.0/query?q=SELECT")
    assert urls[1:] == [f"@{{p{i}.nextRecordsUrl}}" for i in range(4)]
    assert request["allOrNone"] is False


def test_later_requests_carry_only_the_pages_still_to_come(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    for i in range(13_000):  # seven pages: five, then two
        fake.org.insert("Account", {"Name": f"A{i}"})
    ids = [a.id for b in connector.read_accounts(None) for a in b.records]
    assert len(ids) == 13_000 == len(set(ids))
    assert connector.client.counter.summary()["query"] == {"calls": 2, "subrequests": 7}
    assert fake.subrequests["query"] == 7


def test_an_org_refusing_composite_is_read_a_page_a_call(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    for i in range(4500):
        fake.org.insert("Account", {"Name": f"A{i}"})
    fake.refuse_composite = True
    with capture_logs() as logs:
        ids = [a.id for b in connector.read_accounts(None) for a in b.records]
    assert len(ids) == 4500
    assert fake.calls["query"] == 3  # plain nextRecordsUrl paging
    assert [e["fallback"] for e in logs if e["event"] == "salesforce_composite_refused"] == [
        "query_pages"
    ]
    list(connector.read_contacts(None))  # remembered: not asked again
    assert fake.calls["composite"] == 1


def test_a_page_that_failed_for_load_is_asked_for_again_from_where_it_stopped(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    for i in range(4500):
        fake.org.insert("Account", {"Name": f"A{i}"})
    fake.fail("subrequest", 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}])
    ids = [a.id for b in connector.read_accounts(None) for a in b.records]
    assert len(ids) == 4500 == len(set(ids))
    assert fake.calls["composite"] == 2


def test_a_bad_query_inside_composite_is_a_clear_error_not_a_fallback(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    connector = build(extra_fields=["NoSuchField__c"])
    with pytest.raises(SalesforceFatalError, match="INVALID_FIELD"):
        list(connector.read_accounts(None))
    assert connector._reader.composite_refused is False


def test_incremental_read_returns_changes_since_cursor_with_overlap_and_deletions(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    ids = _seed(fake, accounts=4)
    fake.org.tick(3600)
    latest = fake.org.insert("Account", {"Name": "Newest"})  # stamped 01:00
    fake.org.tick(1)
    *_, cursors = _all(connector.read_accounts(None))
    assert json.loads(cursors[-1])["since"] == "2024-01-01T00:55:01.000Z"
    fake.org.tick(3600)
    fake.org.update("Account", ids[1], {"Name": "Renamed"})
    fake.org.tick(60)
    fake.org.delete("Account", ids[2])
    accounts, deleted, cursors = _all(connector.read_accounts(cursors[-1]))
    # The change and the deletion; "Newest", inside the overlap, was seen already.
    assert [(a.id, a.name) for a in accounts] == [(ids[1], "Renamed")]
    assert latest not in [a.id for a in accounts]
    assert deleted == [ids[2]]
    mark = json.loads(cursors[-1])
    # The deletion, stamped in the second this read began, is not marked seen.
    seen = {ids[1]: "2024-01-01T02:00:01.000Z"}
    assert mark == {"since": "2024-01-01T01:56:01.000Z", "seen": seen}
    query = _last_query(mock)
    assert "/queryAll?" in _last_query_url(mock)
    assert "SystemModstamp >= 2024-01-01T00:55:01Z" in query
    assert "IsDeleted" in query


def test_incremental_read_with_nothing_changed_passes_nothing_on(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    _seed(fake)
    fake.org.tick(1)
    *_, cursors = _all(connector.read_accounts(None))
    fake.org.tick(60)
    # Inside the overlap: read again, but already seen at the same stamp, so skipped.
    records, deleted, again = _all(connector.read_accounts(cursors[-1]))
    assert (records, deleted) == ([], [])
    fake.org.tick(3600)
    records, deleted, later = _all(connector.read_accounts(again[-1]))
    assert (records, deleted) == ([], [])
    assert json.loads(later[-1]) == {"since": "2024-01-01T00:56:01.000Z", "seen": {}}


def test_a_record_changed_again_at_a_new_stamp_is_passed_on(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ids = _seed(fake)
    fake.org.tick(1)
    *_, cursors = _all(connector.read_accounts(None))
    fake.org.update("Account", ids[0], {"Name": "Changed"})  # in the second the read began
    records, _, _ = _all(connector.read_accounts(cursors[-1]))
    assert [(a.id, a.name) for a in records] == [(ids[0], "Changed")]


def test_an_older_plain_cursor_reads_from_the_overlap_before_it(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    _seed(fake)
    records, _, cursors = _all(connector.read_accounts("2024-01-01T00:00:00.000Z"))
    assert len(records) == 3
    assert "SystemModstamp >= 2023-12-31T23:55:00Z" in _last_query(mock)
    assert json.loads(cursors[-1])["since"] == "2023-12-31T23:55:00.000Z"


def test_the_next_read_starts_by_the_earlier_clock(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    fake.org.tick(7200)  # the org's clock runs ahead of ours
    fake.org.insert("Account", {"Name": "Late"})
    started = datetime(2024, 1, 1, 1, 0, tzinfo=UTC)
    connector = build()
    connector._clock = lambda: started  # the read starts at our 01:00
    *_, cursors = _all(connector.read_accounts(None))
    assert json.loads(cursors[-1])["since"] == "2024-01-01T00:55:00.000Z"


def test_large_read_switches_to_bulk_api_2_and_dedups_the_first_page(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    for i in range(5000):
        fake.org.insert("Account", {"Name": f"A{i}", "AnnualRevenue": i})
    fake.bulk.polls_until_done = 3
    connector = build(bulk_threshold=4000, use_composite=False)  # one page a call
    connector._reader._bulk._results_per_call = 1500  # several result pages
    batches = list(connector.read_accounts(None))
    ids = [a.id for b in batches for a in b.records]
    assert len(ids) == 5000 == len(set(ids))
    assert all(len(b.records) <= 2000 for b in batches)
    assert fake.calls["query"] == 1
    assert fake.calls["bulk_create"] == 1
    assert fake.calls["bulk_poll"] == 3
    assert fake.calls["bulk_results"] == 4
    revenue = {a.name: a.revenue for b in batches for a in b.records}
    assert revenue["A4999"] == 4999.0  # CSV text decoded to numbers
    assert batches[-1].cursor is not None


def test_incremental_bulk_read_uses_query_all_and_reports_deletions(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    ids = [fake.org.insert("Account", {"Name": f"A{i}"}) for i in range(30)]
    fake.org.tick(3600)
    for rid in ids[:25]:
        fake.org.update("Account", rid, {"Name": "changed"})
    fake.org.delete("Account", ids[0])
    connector = build(bulk_threshold=10)
    connector._reader._page_size = 200
    batches = list(connector.read_accounts("2024-01-01T00:30:00.000Z"))
    deleted = [d for b in batches for d in b.deleted_ids]
    live = [a.id for b in batches for a in b.records]
    assert deleted == [ids[0]]
    assert sorted(live) == sorted(ids[1:25])


def _last_query_url(mock: responses.RequestsMock) -> str:
    """The URL of the last query sent: plain, or the first subrequest of a Composite one."""
    for call in reversed(mock.calls):
        url = call.request.url
        if "/query" in url:
            return url
        if url.endswith("/composite") and call.request.body:
            subs = json.loads(call.request.body)["compositeRequest"]
            if "?q=" in subs[0]["url"]:
                return subs[0]["url"]
    raise AssertionError("no query was sent")


def _last_query(mock: responses.RequestsMock) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(_last_query_url(mock)).query)["q"][0]

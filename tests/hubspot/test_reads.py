"""Full reads: companies and contacts streamed page by page, as HubSpot documents them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connectors.common.paging import RepeatedCursorError
from connectors.common.watermark import Watermark, encode
from connectors.hubspot import HubSpotConnector
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import provision_all

MakeConnector = Callable[..., HubSpotConnector]


def test_companies_become_accounts_with_owner_domains_revenue_and_extras(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    portal.add_owner("7", "owner@seller.com")
    company = portal.add_company(
        name="Acme",
        domain="acme.com",
        hs_additional_domains="acme.de;www.acme.io",
        annualrevenue="125000.50",
        hubspot_owner_id="7",
        industry="Software",
        potential="500000",
    )
    portal.define("companies", "potential", "number", "number")
    connector = make_connector(potential_property="potential", extra_properties=["industry"])

    [batch] = list(connector.read_accounts(None))

    [account] = batch.records
    assert account.id == company
    assert account.name == "Acme"
    assert account.domains == ("acme.com", "acme.de", "www.acme.io")
    assert account.revenue == 125000.5
    assert account.revenue_potential == 500000.0
    assert account.owner_email == "owner@seller.com"
    assert account.attributes == {"industry": "Software"}


def test_empty_or_unreadable_revenue_reads_as_zero(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    portal.add_company(name="NoRevenue")
    portal.add_company(name="Garbled", annualrevenue="lots")
    accounts = [a for b in make_connector().read_accounts(None) for a in b.records]
    assert [a.revenue for a in accounts] == [0.0, 0.0]
    assert all(a.revenue_potential is None and a.owner_email is None for a in accounts)


def test_list_pages_follow_paging_next_after_100_at_a_time(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    ids = [portal.add_company(name=f"C{i}") for i in range(250)]

    batches = list(make_connector().read_accounts(None))

    assert [len(b.records) for b in batches] == [100, 100, 50]
    assert [a.id for b in batches for a in b.records] == ids
    calls = portal.calls("GET", "/crm/v3/objects/companies")
    assert len(calls) == 3
    assert [c.query.get("after") for c in calls] == [None, [ids[100]], [ids[200]]]
    assert all(c.query["limit"] == ["100"] for c in calls)
    assert "archived" not in calls[0].query
    assert {"name", "domain", "annualrevenue", "hubspot_owner_id", "ax_nps"} <= set(
        calls[0].query["properties"]
    )


def test_only_the_last_batch_carries_the_cursor(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    for i in range(150):
        portal.add_company(name=f"C{i}")
    batches = list(make_connector().read_accounts(None))
    assert [b.cursor is None for b in batches] == [True, False]
    # The next read starts the overlap before this one began.
    since = datetime.fromtimestamp(portal.now_ms / 1000 - 300, UTC)
    assert batches[-1].cursor == encode(Watermark(since=since))


def test_an_empty_portal_yields_one_empty_batch_with_a_cursor(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    [batch] = list(make_connector().read_accounts(None))
    assert list(batch.records) == []
    assert batch.cursor is not None


def test_contacts_take_their_primary_company_from_the_inline_associations(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    acme, other = portal.add_company(name="Acme"), portal.add_company(name="Other")
    with_primary = portal.add_contact(
        company=acme,
        others=[other],
        email="Jane@Acme.com",
        firstname="Jane",
        lastname="Doe",
        jobtitle="VP Sales",
    )
    only_unlabeled = portal.add_contact(others=[other], email="x@other.com")
    no_company = portal.add_contact(email="lonely@nowhere.com")

    contacts = {c.id: c for b in make_connector().read_contacts(None) for c in b.records}

    assert contacts[with_primary].account_id == acme
    assert contacts[with_primary].name == "Jane Doe"
    assert contacts[with_primary].title == "VP Sales"
    assert contacts[with_primary].email == "Jane@Acme.com"
    assert contacts[only_unlabeled].account_id == other
    assert contacts[no_company].account_id == ""
    [call] = portal.calls("GET", "/crm/v3/objects/contacts")
    assert call.query["associations"] == ["companies"]
    assert portal.calls("POST", r"/crm/v4/.*") == []


def test_tier_property_and_agent_fields_are_read_typed(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    portal.define("contacts", "buying_role", "enumeration", "select", options=("C-Level",))
    portal.add_contact(
        email="a@b.com",
        buying_role="C-Level",
        ax_tier="executive",
        ax_last_score="9",
        ax_nps_category="promoter",
        ax_last_response_at="2026-01-02T03:04:05.678Z",
    )
    [batch] = list(make_connector(tier_property="buying_role").read_contacts(None))
    [contact] = batch.records
    assert contact.crm_tier == "C-Level"
    assert contact.crm_values == {
        "ax_tier": "executive",
        "ax_last_score": 9,
        "ax_nps_category": "promoter",
        "ax_last_response_at": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    }


def test_account_agent_fields_are_parsed_for_the_planner(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    portal.add_company(
        name="A",
        ax_health_score="71",
        ax_nps="33.3",
        ax_at_risk="false",
        ax_upsell_candidate="true",
        ax_tiers_covered="management;executive",
        ax_health_status="healthy",
    )
    [batch] = list(make_connector().read_accounts(None))
    values = batch.records[0].crm_values
    assert values["ax_health_score"] == 71.0
    assert values["ax_nps"] == 33.3
    assert values["ax_at_risk"] is False
    assert values["ax_upsell_candidate"] is True
    assert values["ax_tiers_covered"] == ("executive", "management")
    assert values["ax_health_status"] == "healthy"
    assert values["ax_nps_strict"] is None
    assert values["ax_last_response_at"] is None


def test_owners_are_loaded_once_and_archived_owners_looked_up_on_a_miss(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    for i in range(1, 131):
        portal.add_owner(str(i), f"rep{i}@seller.com")
    portal.add_owner("900", "gone@seller.com", archived=True)
    for owner in ("5", "120", "900", "999"):
        portal.add_company(name=owner, hubspot_owner_id=owner)

    accounts = {a.name: a for b in make_connector().read_accounts(None) for a in b.records}

    assert accounts["5"].owner_email == "rep5@seller.com"
    assert accounts["120"].owner_email == "rep120@seller.com"
    assert accounts["900"].owner_email == "gone@seller.com"
    assert accounts["999"].owner_email is None
    owner_calls = portal.calls("GET", "/crm/v3/owners/?")
    assert [c.query.get("archived") for c in owner_calls] == [None, None, ["true"]]


def test_a_repeated_paging_cursor_stops_the_read(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    page = {"results": [], "paging": {"next": {"after": "500", "link": "?after=500"}}}
    portal.fail("GET", "/crm/v3/objects/companies", 200, body=page, times=5)
    with pytest.raises(RepeatedCursorError):
        list(make_connector().read_accounts(None))
    assert len(portal.calls("GET", "/crm/v3/objects/companies")) == 2


def test_a_full_read_never_looks_up_associations_separately(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    for i in range(3):
        portal.add_contact(email=f"nobody{i}@example.com")
    contacts = [c for b in make_connector().read_contacts(None) for c in b.records]
    assert [c.account_id for c in contacts] == ["", "", ""]
    assert portal.calls("POST") == []

"""A quiet portal costs nothing: once the agent's own write-back has been read, a cycle
with nothing changed makes one search per object and no association reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from agent.core.ports import FieldUpdate
from connectors.hubspot import HubSpotConnector
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import provision_all

MakeConnector = Callable[..., HubSpotConnector]
COMPANIES = 120
CYCLE_MS = 600_000  # cycles every ten minutes; the overlap is five


def _read(connector: HubSpotConnector, cursors: dict[str, str | None]) -> Counter[str]:
    delivered: Counter[str] = Counter()
    for obj, batches in (
        ("account", connector.read_accounts(cursors.get("account"))),
        ("contact", connector.read_contacts(cursors.get("contact"))),
    ):
        for batch in batches:
            delivered[obj] += len(batch.records) + len(batch.deleted_ids)
            cursors[obj] = batch.cursor or cursors.get(obj)
    return +delivered  # without zero counts


def _calls(portal: FakePortal) -> tuple[int, int]:
    searches = len(portal.calls("POST", r"/crm/v3/objects/\w+/search"))
    associations = len(portal.calls("POST", r"/crm/v4/associations/.*"))
    return searches, associations


def test_three_quiet_cycles_make_two_searches_and_no_association_reads(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    companies = [portal.add_company(name=f"C{i}") for i in range(COMPANIES)]
    contacts = [
        portal.add_contact(company=c, email=f"p{i}@c.example") for i, c in enumerate(companies)
    ]
    portal.tick(3_600_000)
    connector = make_connector(search_page_size=50)
    cursors: dict[str, str | None] = {}
    assert _read(connector, cursors) == {"account": COMPANIES, "contact": COMPANIES}

    # The agent writes a figure to every company and contact.
    for obj, ids, values in (
        ("account", companies, {"ax_health_score": 70.0}),
        ("contact", contacts, {"ax_tier": "frontline"}),
    ):
        for start in range(0, len(ids), connector.max_write_batch):
            chunk = ids[start : start + connector.max_write_batch]
            outcomes = connector.write(obj, [FieldUpdate(i, values) for i in chunk])  # type: ignore[arg-type]
            assert all(o.ok for o in outcomes)
    portal.tick(CYCLE_MS)
    assert _read(connector, cursors) == {"account": COMPANIES, "contact": COMPANIES}

    for _ in range(3):
        portal.tick(CYCLE_MS)
        searches, associations = _calls(portal)
        assert _read(connector, cursors) == {}
        assert _calls(portal) == (searches + 2, associations)


def test_inside_the_overlap_records_already_seen_are_not_passed_on_or_looked_up(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    company = portal.add_company(name="Acme")
    contact = portal.add_contact(company=company, email="a@acme.example")
    portal.tick(1_000)
    connector = make_connector()
    cursors: dict[str, str | None] = {}
    _read(connector, cursors)
    for _ in range(3):
        portal.tick(30_000)  # closer together than the overlap: read again, skipped by id
        _, associations = _calls(portal)
        assert _read(connector, cursors) == {}
        assert _calls(portal)[1] == associations
    portal.modify("contacts", contact, firstname="Ann")
    portal.tick(30_000)
    assert _read(connector, cursors) == {"contact": 1}

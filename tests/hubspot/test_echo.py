"""The agent's own figures read back from HubSpot are no change: after a write-back the
next search returns every company and contact written (``hs_lastmodifieddate`` moved);
the mirror stores their values without counting them as changed. HubSpot gives every
value back as text ("70" for the 70 written, "frontline" for the tier): it is compared
as the write-back compares. A value someone else typed is a change.

Real state database (SQLite file and PostgreSQL), the portal faked at the HTTP boundary."""

from __future__ import annotations

from collections.abc import Callable

from agent.core.contract import default_field_specs
from agent.core.ports import FieldUpdate
from agent.state.store import StateStore
from agent.sync.cycle import sync_crm
from connectors.hubspot import HubSpotConnector
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import provision_all

MakeConnector = Callable[..., HubSpotConnector]
SPECS = default_field_specs()


def _write(
    store: StateStore, connector: HubSpotConnector, obj: str, updates: list[FieldUpdate]
) -> None:
    """As the write-back does: send, then record what the portal confirmed."""
    assert all(o.ok for o in connector.write(obj, updates))  # type: ignore[arg-type]
    with store.transaction() as tx:
        tx.record_written("hubspot", obj, updates)  # type: ignore[arg-type]


def test_the_agents_own_writes_read_back_are_stored_but_no_change(
    portal: FakePortal, make_connector: MakeConnector, store: StateStore
) -> None:
    provision_all(portal)
    companies = [portal.add_company(name=f"C{i}") for i in range(5)]
    contacts = [
        portal.add_contact(company=c, email=f"p{i}@c.example") for i, c in enumerate(companies)
    ]
    portal.tick(3_600_000)
    connector = make_connector()
    first = sync_crm(store, connector, specs=SPECS)
    assert (first["accounts_changed"], first["contacts_changed"]) == (5, 5)

    _write(
        store,
        connector,
        "account",
        [
            FieldUpdate(c, {"ax_health_score": 70 + n, "ax_nps": 33.3})
            for n, c in enumerate(companies)
        ],
    )
    _write(
        store, connector, "contact", [FieldUpdate(c, {"ax_tier": "frontline"}) for c in contacts]
    )
    portal.tick(600_000)
    told: list[str] = []
    counts = sync_crm(store, connector, specs=SPECS, on_changed=lambda _o, ids: told.extend(ids))
    assert (counts["accounts_read"], counts["contacts_read"]) == (5, 5)
    assert (counts["accounts_changed"], counts["accounts_echoed"]) == (0, 5)
    assert (counts["contacts_changed"], counts["contacts_echoed"]) == (0, 5)
    assert told == []
    held = {a.id: a.crm_values["ax_health_score"] for a in store.load_accounts("hubspot")}
    assert held == {c: 70 + n for n, c in enumerate(companies)}


def test_a_value_typed_over_in_the_portal_is_a_change(
    portal: FakePortal, make_connector: MakeConnector, store: StateStore
) -> None:
    provision_all(portal)
    companies = [portal.add_company(name=f"C{i}") for i in range(3)]
    portal.tick(3_600_000)
    connector = make_connector()
    sync_crm(store, connector, specs=SPECS)
    _write(
        store, connector, "account", [FieldUpdate(c, {"ax_health_score": 50}) for c in companies]
    )
    portal.modify("companies", companies[1], ax_health_score="12")
    portal.tick(600_000)
    told: list[str] = []
    counts = sync_crm(store, connector, specs=SPECS, on_changed=lambda _o, ids: told.extend(ids))
    assert (counts["accounts_changed"], counts["accounts_echoed"]) == (1, 2)
    assert told == [companies[1]]

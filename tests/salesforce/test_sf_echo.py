"""The agent's own figures read back from Salesforce are no change: after a write-back,
the next incremental read returns every record written (its ``SystemModstamp`` moved),
and the mirror stores their values without counting them as changed, so no account is
recomputed and no record compared for them. A value someone else put there is a change.

Real state database (SQLite file and PostgreSQL), the org faked at the HTTP boundary."""

from __future__ import annotations

from agent.core.contract import default_field_specs
from agent.core.ports import FieldUpdate
from agent.state.store import StateStore
from agent.sync.cycle import sync_crm
from connectors.salesforce import SalesforceConnector
from tests.salesforce.fake import FakeSalesforce

SPECS = default_field_specs()
HEALTH, NPS = "AX_Health_Score__c", "AX_NPS__c"


def _sync(store: StateStore, connector: SalesforceConnector, told: list[str]) -> dict[str, int]:
    return sync_crm(store, connector, specs=SPECS, on_changed=lambda _obj, ids: told.extend(ids))


def _write(store: StateStore, connector: SalesforceConnector, updates: list[FieldUpdate]) -> None:
    """As the write-back does: send, then record what the org confirmed."""
    assert all(o.ok for o in connector.write("account", updates))
    with store.transaction() as tx:
        tx.record_written("salesforce", "account", updates)


def _org(fake: FakeSalesforce, count: int) -> list[str]:
    """``count`` accounts, an hour old."""
    ids = [fake.org.insert("Account", {"Name": f"A{i}"}) for i in range(count)]
    fake.org.tick(3600)
    return ids


def test_the_agents_own_writes_read_back_are_stored_but_no_change(
    fake: FakeSalesforce, connector: SalesforceConnector, store: StateStore
) -> None:
    ids = _org(fake, 6)
    told: list[str] = []
    assert _sync(store, connector, told)["accounts_changed"] == 6

    _write(
        store, connector, [FieldUpdate(i, {HEALTH: 70 + n, NPS: 12.5}) for n, i in enumerate(ids)]
    )
    fake.org.tick(600)
    told.clear()
    counts = _sync(store, connector, told)
    assert counts["accounts_read"] == 6  # every record written comes back once
    assert (counts["accounts_changed"], counts["accounts_echoed"]) == (0, 6)
    assert told == []
    held = {a.id: a.crm_values for a in store.load_accounts("salesforce")}
    assert {i: (held[i][HEALTH], held[i][NPS]) for i in ids} == {
        i: (70 + n, 12.5) for n, i in enumerate(ids)
    }


def test_a_value_the_agent_did_not_write_is_a_change(
    fake: FakeSalesforce, connector: SalesforceConnector, store: StateStore
) -> None:
    ids = _org(fake, 4)
    told: list[str] = []
    _sync(store, connector, told)
    _write(store, connector, [FieldUpdate(i, {HEALTH: 50}) for i in ids])
    fake.org.update("Account", ids[0], {HEALTH: 99})  # an admin typed over the figure
    fake.org.update("Account", ids[1], {NPS: 30})  # a field the agent never wrote here
    fake.org.update("Account", ids[2], {"Name": "Renamed"})  # and its figure came back
    fake.org.tick(600)
    told.clear()
    counts = _sync(store, connector, told)
    assert (counts["accounts_changed"], counts["accounts_echoed"]) == (3, 1)
    assert sorted(told) == sorted(ids[:3])


def test_without_the_write_back_fields_every_value_read_is_a_change(
    fake: FakeSalesforce, connector: SalesforceConnector, store: StateStore
) -> None:
    ids = _org(fake, 3)
    sync_crm(store, connector)
    _write(store, connector, [FieldUpdate(i, {HEALTH: 40}) for i in ids])
    fake.org.tick(600)
    counts = sync_crm(store, connector)
    assert (counts["accounts_changed"], counts["accounts_echoed"]) == (3, 0)

"""A quiet org costs nothing: after the agent's own write-back has been read once, a
cycle with nothing changed makes one query call per object and passes nothing on."""

from __future__ import annotations

from collections import Counter

from agent.core.ports import FieldUpdate
from connectors.salesforce import SalesforceConnector
from tests.salesforce.fake import FakeSalesforce

ACCOUNTS = 450  # three pages of 200 (the smallest batch Salesforce allows)
CYCLE_S = 600  # cycles run every ten minutes; the overlap is five


def _read(connector: SalesforceConnector, cursors: dict[str, str | None]) -> Counter[str]:
    """One sync of both objects from the stored cursors; records passed on, by object."""
    delivered: Counter[str] = Counter()
    for obj, batches in (
        ("account", connector.read_accounts(cursors.get("account"))),
        ("contact", connector.read_contacts(cursors.get("contact"))),
    ):
        for batch in batches:
            delivered[obj] += len(batch.records) + len(batch.deleted_ids)
            cursors[obj] = batch.cursor or cursors.get(obj)
    return +delivered  # without zero counts


def _query_calls(connector: SalesforceConnector) -> int:
    return connector.client.counter.by_kind["query"]


def test_three_quiet_cycles_make_one_query_call_per_object_and_pass_nothing_on(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    connector._reader._page_size = 200
    ids = [fake.org.insert("Account", {"Name": f"A{i}"}) for i in range(ACCOUNTS)]
    for i, account in enumerate(ids):
        fake.org.insert("Contact", {"AccountId": account, "Email": f"c{i}@x.example"})
    fake.org.tick(3600)
    cursors: dict[str, str | None] = {}
    assert _read(connector, cursors) == {"account": ACCOUNTS, "contact": ACCOUNTS}

    # The agent writes its figures to every account: each record gets a new stamp.
    updates = [FieldUpdate(i, {"AX_Health_Score__c": 70}) for i in ids]
    for start in range(0, len(updates), connector.max_write_batch):
        batch = updates[start : start + connector.max_write_batch]
        assert all(o.ok for o in connector.write("account", batch))
    fake.org.tick(CYCLE_S)
    assert _read(connector, cursors) == {"account": ACCOUNTS}  # its own writes, once

    for _ in range(3):
        fake.org.tick(CYCLE_S)
        before = _query_calls(connector)
        assert _read(connector, cursors) == {}
        assert _query_calls(connector) - before == 2


def test_inside_the_overlap_what_was_seen_is_read_but_not_passed_on(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ids = [fake.org.insert("Account", {"Name": f"A{i}"}) for i in range(5)]
    fake.org.tick(1)
    cursors: dict[str, str | None] = {}
    _read(connector, cursors)
    for _ in range(3):
        fake.org.tick(30)  # cycles closer together than the overlap
        assert _read(connector, cursors) == {}
    fake.org.update("Account", ids[2], {"Name": "Renamed"})
    fake.org.tick(30)
    assert _read(connector, cursors) == {"account": 1}

"""The contract's reading and field-check tests (see ``crm_contract``)."""

from __future__ import annotations

import pytest
from contract_harness import ContractBase, CrmHarness
from contract_support import SEED_ACCOUNTS, SEED_CONTACTS, Mirror, merged, read_all

from agent.core.models import Account, Contact
from agent.state.store import StateStore
from agent.sync.cycle import sync_crm
from agent.sync.writeback import crm_field

__all__ = ["ReadingContract"]


def _domain(website: str) -> str:
    host = website.split("://", 1)[-1].split("/", 1)[0].lower()
    return host.removeprefix("www.")


class ReadingContract(ContractBase):
    """Full and incremental reads, the agent's sync, and ``check_fields``."""

    def test_connector_is_named_for_its_fields_and_takes_batches(
        self, crm_harness: CrmHarness
    ) -> None:
        connector = crm_harness.connector()
        assert connector.name == crm_harness.name
        assert connector.max_write_batch >= 1
        assert all(crm_field(s, connector.name) for s in crm_harness.specs)

    def test_full_read_returns_every_seeded_account(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        read = read_all(crm_harness.connector().read_accounts(None))
        assert set(read.records) == {ids[a.key] for a in SEED_ACCOUNTS}
        assert read.deleted == []
        assert read.cursor is not None
        for seed in SEED_ACCOUNTS:
            account: Account = read.records[ids[seed.key]]
            assert account.name == seed.name
            assert account.revenue == seed.revenue
            assert _domain(seed.website) in {_domain(d) for d in account.domains}
            assert account.owner_email == seed.owner_email

    def test_full_read_returns_every_seeded_contact(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        read = read_all(crm_harness.connector().read_contacts(None))
        assert set(read.records) == {ids[c.key] for c in SEED_CONTACTS}
        assert read.cursor is not None
        for seed in SEED_CONTACTS:
            contact: Contact = read.records[ids[seed.key]]
            assert contact.account_id == ids[seed.account_key]
            assert contact.email == seed.email
            assert contact.name == seed.name
            assert contact.title == seed.title

    def test_incremental_read_with_nothing_changed_keeps_the_state(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        before = (dict(mirror.accounts), dict(mirror.contacts), dict(mirror.cursors))
        mirror.sync(crm_harness.connector())
        assert (mirror.accounts, mirror.contacts) == before[:2]
        assert all(mirror.cursors[obj] is not None for obj in before[2])

    def test_incremental_read_returns_changed_accounts_and_drops_deleted_ones(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        connector = crm_harness.connector()
        first = read_all(connector.read_accounts(None))
        crm_harness.rename("account", ids["acme"], "Acme International")
        crm_harness.delete("account", ids["initech"])
        changes = read_all(connector.read_accounts(first.cursor))
        assert changes.records[ids["acme"]].name == "Acme International"
        assert ids["initech"] not in changes.records
        assert changes.cursor is not None
        now = read_all(crm_harness.connector().read_accounts(None))
        assert merged(first.records, changes) == now.records
        assert ids["initech"] not in now.records

    def test_incremental_read_returns_changed_contacts_and_drops_deleted_ones(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        connector = crm_harness.connector()
        first = read_all(connector.read_contacts(None))
        crm_harness.rename("contact", ids["ann"], "Annika")
        crm_harness.delete("contact", ids["bob"])
        changes = read_all(connector.read_contacts(first.cursor))
        renamed = changes.records[ids["ann"]]
        assert renamed.name != first.records[ids["ann"]].name
        assert "Annika" in renamed.name
        assert ids["bob"] not in changes.records
        now = read_all(crm_harness.connector().read_contacts(None))
        assert merged(first.records, changes) == now.records
        assert set(now.records) == {ids[c.key] for c in SEED_CONTACTS} - {ids["bob"]}

    def test_the_agents_sync_follows_changes_and_deletions_to_the_last_record(
        self, crm_harness: CrmHarness, ids: dict[str, str], sqlite_url: str
    ) -> None:
        """``agent.sync.cycle.sync_crm`` with a real state store keeps the mirror true."""
        with StateStore.open(sqlite_url) as store:
            sync_crm(store, crm_harness.connector())
            crm_harness.rename("account", ids["globex"], "Globex International")
            crm_harness.delete("account", ids["acme"])
            crm_harness.delete("account", ids["initech"])
            sync_crm(store, crm_harness.connector())
            accounts = store.load_accounts(crm_harness.name)
            assert [(a.id, a.name) for a in accounts] == [(ids["globex"], "Globex International")]
            crm_harness.delete("account", ids["globex"])
            sync_crm(store, crm_harness.connector())
            assert store.load_accounts(crm_harness.name) == []

    # -- checking -----------------------------------------------------------------------

    def test_check_fields_is_clean_when_provisioned(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        assert crm_harness.connector().check_fields(crm_harness.specs) == []

    def test_check_fields_names_a_missing_field_and_the_provision_command(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        if not crm_harness.has_schema:
            pytest.skip(f"the {crm_harness.name} CRM has no schema a field could be missing from")
        crm_harness.drop_field(self.spec(crm_harness, "account", "nps"))
        problems = crm_harness.connector().check_fields(crm_harness.specs)
        assert [p.field for p in problems] == [self.field(crm_harness, "account", "nps")]
        assert problems[0].object == "account"
        assert f"ax-agent crm provision {crm_harness.name}" in problems[0].fix

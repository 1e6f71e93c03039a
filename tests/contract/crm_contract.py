"""The contract every CRM connector passes (Salesforce, HubSpot, the plain-file CRM).

How to plug a connector in: write a harness class implementing ``CrmHarness`` for
your CRM (usually around a fake at the HTTP boundary), then a test module in this
folder::

    from crm_contract import CrmContract

    class TestMyCrmContract(CrmContract):
        @pytest.fixture
        def crm_harness(self) -> Iterator[MyHarness]:
            with my_fake_crm() as fake:
                yield MyHarness(fake)

Every ``test_*`` below then runs against your connector. What the contract means:

- a full read (cursor None) returns every live account and contact;
- an incremental read from the cursor of an earlier read, merged into that read,
  equals a full read now: records are upserted by id and ``deleted_ids`` removed,
  or, when a page says ``snapshot``, the read's records replace the state (a source
  without change tracking); it may return unchanged records again, but must return
  the changed ones, each exactly as a full read returns it;
- ``check_fields`` is clean for a provisioned CRM and names a missing field together
  with ``ax-agent crm provision <crm>`` (when the CRM has a schema at all);
- ``write`` changes exactly the given fields of exactly the given records, answers
  one outcome per update in order, reports a refused record without failing the
  rest (when the CRM can refuse one), and every full batch (``max_write_batch``)
  is one counted update call;
- figures planned by ``agent.writeback`` and written read back, in the connector's
  ``crm_values``, as values the planner takes as equal: a second cycle with nothing
  changed makes zero update calls, and one with a changed figure writes only that.

A harness declares what does not apply to its CRM (``refuses_records``,
``has_schema``); those tests are skipped with the reason, never faked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import pytest
from contract_support import (
    SEED_ACCOUNTS,
    SEED_CONTACTS,
    Mirror,
    SeedAccount,
    SeedContact,
    contract_document,
    differences,
    merged,
    plan,
    read_all,
    with_account,
)

from agent.config import FieldSpec, ObjectKind
from agent.cycle import plan_writeback, run_writeback, sync_crm
from agent.models import Account, Contact
from agent.ports import CrmConnector, FieldUpdate, FieldValue
from agent.state.store import StateStore
from agent.writeback import crm_field, execute, normalise

__all__ = ["CrmContract", "CrmHarness"]


class CrmHarness(Protocol):
    """What a connector's contract test supplies as the ``crm_harness`` fixture."""

    #: The connector's ``name``: also which ``FieldSpec`` attribute names its fields.
    name: str
    #: The agent's fields as provisioned in the fake CRM.
    specs: Sequence[FieldSpec]
    #: Whether ``write`` can refuse a record (one deleted meanwhile, for instance).
    refuses_records: bool
    #: Whether the CRM has a schema in which one of the agent's fields can be missing.
    has_schema: bool

    def seed(
        self, accounts: Sequence[SeedAccount], contacts: Sequence[SeedContact]
    ) -> dict[str, str]:
        """Create records (fields provisioned); return seed key -> CRM id."""
        ...

    def connector(self) -> CrmConnector:
        """A new connector on this CRM."""
        ...

    def rename(self, obj: ObjectKind, record_id: str, name: str) -> None:
        """Change a record so it shows as changed well after the seed (beyond any overlap)."""
        ...

    def delete(self, obj: ObjectKind, record_id: str) -> None:
        """Delete a record, later than the seed as above."""
        ...

    def drop_field(self, spec: FieldSpec) -> None:
        """Make one of the agent's fields missing from the CRM (only with ``has_schema``)."""
        ...

    def stored(self, obj: ObjectKind, record_id: str) -> Mapping[str, FieldValue]:
        """The CRM's current values of the agent's fields (by CRM field name), decoded."""
        ...

    def update_calls(self) -> int:
        """Update calls the CRM has counted so far."""
        ...


def _domain(website: str) -> str:
    host = website.split("://", 1)[-1].split("/", 1)[0].lower()
    return host.removeprefix("www.")


class CrmContract:
    """Subclass in a ``Test…`` class and supply the ``crm_harness`` fixture."""

    @pytest.fixture
    def ids(self, crm_harness: CrmHarness) -> dict[str, str]:
        return crm_harness.seed(SEED_ACCOUNTS, SEED_CONTACTS)

    def field(self, harness: CrmHarness, obj: ObjectKind, logical: str) -> str:
        return crm_field(self.spec(harness, obj, logical), harness.name)

    def spec(self, harness: CrmHarness, obj: ObjectKind, logical: str) -> FieldSpec:
        return next(s for s in harness.specs if s.object == obj and s.logical == logical)

    # -- reading ------------------------------------------------------------------------

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
        """``agent.cycle.sync_crm`` with a real state store keeps the mirror true."""
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

    # -- writing ------------------------------------------------------------------------

    def test_write_updates_exactly_the_given_fields(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        nps = self.field(crm_harness, "account", "nps")
        at_risk = self.field(crm_harness, "account", "at_risk")
        respondents = self.field(crm_harness, "account", "respondents")
        acme, globex = ids["acme"], ids["globex"]
        connector = crm_harness.connector()
        outcomes = connector.write("account", [FieldUpdate(acme, {nps: 12.5, at_risk: True})])
        assert [(o.record_id, o.ok) for o in outcomes] == [(acme, True)]
        stored = crm_harness.stored("account", acme)
        assert (stored[nps], stored[at_risk]) == (12.5, True)
        assert stored[respondents] is None
        assert all(v in (None, False, ()) for v in crm_harness.stored("account", globex).values())
        accounts = read_all(connector.read_accounts(None)).records
        assert accounts[acme].name == "Acme GmbH"

    def test_write_answers_one_outcome_per_update_in_order(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        respondents = self.field(crm_harness, "account", "respondents")
        order = [ids["initech"], ids["acme"], ids["globex"]]
        updates = [FieldUpdate(rid, {respondents: n}) for n, rid in enumerate(order)]
        outcomes = crm_harness.connector().write("account", updates)
        assert [(o.record_id, o.ok) for o in outcomes] == [(rid, True) for rid in order]
        assert [crm_harness.stored("account", rid)[respondents] for rid in order] == [0, 1, 2]

    def test_write_round_trips_every_kind_of_value_and_none_clears(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        f = self.field
        values: dict[str, FieldValue] = {
            f(crm_harness, "account", "health_score"): 71,
            f(crm_harness, "account", "nps"): -12.5,
            f(crm_harness, "account", "contact_coverage"): 50,
            f(crm_harness, "account", "respondents"): 3,
            f(crm_harness, "account", "upsell_candidate"): True,
            f(crm_harness, "account", "tier_misaligned"): False,
            f(crm_harness, "account", "health_status"): "healthy",
            f(crm_harness, "account", "tiers_covered"): ("executive", "management"),
            f(crm_harness, "account", "last_response_at"): datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        }
        contact_values: dict[str, FieldValue] = {
            f(crm_harness, "contact", "tier"): "executive",
            f(crm_harness, "contact", "last_score"): 9,
            f(crm_harness, "contact", "nps_category"): "promoter",
        }
        acme, ann = ids["acme"], ids["ann"]
        connector = crm_harness.connector()
        assert connector.write("account", [FieldUpdate(acme, values)])[0].ok
        assert connector.write("contact", [FieldUpdate(ann, contact_values)])[0].ok
        stored = crm_harness.stored("account", acme)
        for name, value in values.items():
            if isinstance(value, tuple):
                assert set(stored[name] or ()) == set(value), name
            else:
                assert stored[name] == value, name
        assert {k: crm_harness.stored("contact", ann)[k] for k in contact_values} == contact_values
        self._assert_read_back(crm_harness, "account", acme, values)
        self._assert_read_back(crm_harness, "contact", ann, contact_values)
        status = f(crm_harness, "account", "health_status")
        (cleared,) = connector.write("account", [FieldUpdate(acme, {status: None})])
        assert cleared.ok
        assert crm_harness.stored("account", acme)[status] is None
        self._assert_read_back(crm_harness, "account", acme, {status: None})

    def _assert_read_back(
        self,
        harness: CrmHarness,
        obj: ObjectKind,
        record_id: str,
        values: Mapping[str, FieldValue],
    ) -> None:
        """A fresh read's ``crm_values`` hold ``values`` as the planner compares them."""
        connector = harness.connector()
        pages = connector.read_accounts(None) if obj == "account" else connector.read_contacts(None)
        record = read_all(pages).records[record_id]
        specs = {crm_field(s, harness.name): s for s in harness.specs if s.object == obj}
        back = {name: normalise(specs[name], record.crm_values.get(name)) for name in values}
        assert back == {name: normalise(specs[name], v) for name, v in values.items()}

    def test_write_reports_a_refused_record_and_applies_the_rest(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        if not crm_harness.refuses_records:
            pytest.skip(f"the {crm_harness.name} CRM accepts every record it is given")
        nps = self.field(crm_harness, "account", "nps")
        crm_harness.delete("account", ids["initech"])
        updates = [FieldUpdate(ids["acme"], {nps: 30.0}), FieldUpdate(ids["initech"], {nps: 40.0})]
        ok, refused = crm_harness.connector().write("account", updates)
        assert (ok.record_id, ok.ok) == (ids["acme"], True)
        assert (refused.record_id, refused.ok) == (ids["initech"], False)
        assert refused.error_code
        assert crm_harness.stored("account", ids["acme"])[nps] == 30.0

    def test_a_full_batch_is_one_update_call(self, crm_harness: CrmHarness) -> None:
        connector = crm_harness.connector()
        size = min(connector.max_write_batch, 1000)
        seeds = [
            SeedAccount(f"a{i}", f"Account {i}", f"a{i}.example", float(i)) for i in range(size + 1)
        ]
        ids = crm_harness.seed(seeds, ())
        respondents = self.field(crm_harness, "account", "respondents")
        before = crm_harness.update_calls()
        full = [FieldUpdate(ids[s.key], {respondents: 2}) for s in seeds[:size]]
        assert all(o.ok for o in connector.write("account", full))
        assert crm_harness.update_calls() == before + 1
        updates = [FieldUpdate(ids[s.key], {respondents: 3}) for s in seeds]
        counts = execute(connector, "account", updates)
        assert counts.written == len(seeds)
        assert counts.calls == math.ceil(len(seeds) / connector.max_write_batch)
        assert crm_harness.update_calls() == before + 1 + counts.calls
        assert crm_harness.stored("account", ids[seeds[-1].key])[respondents] == 3

    # -- write-back cycles --------------------------------------------------------------

    def test_written_figures_read_back_as_planned(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        doc = contract_document(ids)
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        counts = mirror.write_back(crm_harness.connector(), doc, crm_harness.specs)
        assert (counts["account"].written, counts["contact"].written) == (3, 4)
        assert counts["account"].failed == counts["contact"].failed == 0
        fresh = Mirror()
        fresh.sync(crm_harness.connector())
        for obj in ("account", "contact"):
            back = fresh.read_back(obj)
            again = plan(doc, crm_harness.specs, crm_harness.name, obj, back)
            assert again == [], differences(again, back)

    def test_written_figures_are_rounded_by_the_planner(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        mirror.write_back(crm_harness.connector(), contract_document(ids), crm_harness.specs)
        acme = crm_harness.stored("account", ids["acme"])
        f = self.field
        assert acme[f(crm_harness, "account", "nps")] == 12.3
        assert acme[f(crm_harness, "account", "nps_strict")] == -33.4
        assert acme[f(crm_harness, "account", "contact_coverage")] == 13
        assert acme[f(crm_harness, "account", "tier_coverage")] == 67
        assert acme[f(crm_harness, "account", "health_score")] == 63
        assert acme[f(crm_harness, "account", "last_response_at")] == datetime(
            2026, 1, 30, 12, 5, 6, tzinfo=UTC
        )
        assert set(acme[f(crm_harness, "account", "tiers_missing")] or ()) == {"management"}
        initech = crm_harness.stored("account", ids["initech"])
        assert initech[f(crm_harness, "account", "nps")] is None
        assert initech[f(crm_harness, "account", "health_status")] == "no_feedback"
        assert initech[f(crm_harness, "account", "respondents")] == 0
        assert crm_harness.stored("contact", ids["di"])[f(crm_harness, "contact", "tier")] == (
            "unknown"
        )

    def test_second_cycle_with_nothing_changed_makes_zero_update_calls(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        doc = contract_document(ids)
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        before = crm_harness.update_calls()
        first = mirror.write_back(crm_harness.connector(), doc, crm_harness.specs)
        assert first["account"].calls == first["contact"].calls == 1
        assert crm_harness.update_calls() == before + 2
        mirror.sync(crm_harness.connector())  # incremental: brings the written values back
        for obj in ("account", "contact"):
            back = mirror.read_back(obj)
            again = plan(doc, crm_harness.specs, crm_harness.name, obj, back)
            assert again == [], differences(again, back)
        second = mirror.write_back(crm_harness.connector(), doc, crm_harness.specs)
        assert second["account"].calls == second["contact"].calls == 0
        assert crm_harness.update_calls() == before + 2

    def test_the_agents_own_cycle_with_nothing_changed_makes_zero_update_calls(
        self, crm_harness: CrmHarness, ids: dict[str, str], sqlite_url: str
    ) -> None:
        """``agent.cycle`` with a real state store: sync, plan, write; then again."""
        doc = contract_document(ids)
        with StateStore.open(sqlite_url) as store:
            sync_crm(store, crm_harness.connector())
            connector = crm_harness.connector()
            first = plan_writeback(store, connector, doc, crm_harness.specs)
            assert first.records == 7
            before = crm_harness.update_calls()
            counts = run_writeback(store, connector, first)
            assert (counts.written, counts.failed, counts.calls) == (7, 0, 2)
            assert crm_harness.update_calls() == before + 2
            sync_crm(store, crm_harness.connector())
            mirrored: dict[ObjectKind, list[Account] | list[Contact]] = {
                "account": store.load_accounts(crm_harness.name),
                "contact": store.load_contacts(crm_harness.name),
            }
            for obj, records in mirrored.items():  # the mirror alone, without our own record
                back = {r.id: dict(r.crm_values) for r in records}
                again = plan(doc, crm_harness.specs, crm_harness.name, obj, back)
                assert again == [], differences(again, back)
            connector = crm_harness.connector()
            second = plan_writeback(store, connector, doc, crm_harness.specs)
            assert second.records == 0, second.updates
            assert run_writeback(store, connector, second).calls == 0
        assert crm_harness.update_calls() == before + 2

    def test_next_cycle_writes_only_the_changed_figures(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        doc = contract_document(ids)
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        mirror.write_back(crm_harness.connector(), doc, crm_harness.specs)
        mirror.sync(crm_harness.connector())
        acme, globex = ids["acme"], ids["globex"]
        # nps_strict moves within its rounding (-33.4 either way); nps becomes null.
        moved = with_account(doc, acme, nps=None, nps_strict=-33.36)
        changed = with_account(
            moved, globex, health_score=41.0, health_status="neutral", at_risk=False
        )
        f = self.field
        nps = f(crm_harness, "account", "nps")
        expected = {
            acme: {nps: None},
            globex: {
                f(crm_harness, "account", "health_score"): 41,
                f(crm_harness, "account", "health_status"): "neutral",
                f(crm_harness, "account", "at_risk"): False,
            },
        }
        back = mirror.read_back("account")
        planned = plan(changed, crm_harness.specs, crm_harness.name, "account", back)
        assert {u.record_id: dict(u.values) for u in planned} == expected
        before = crm_harness.update_calls()
        counts = mirror.write_back(crm_harness.connector(), changed, crm_harness.specs)
        assert (counts["account"].written, counts["contact"].calls) == (2, 0)
        assert crm_harness.update_calls() == before + 1
        stored = crm_harness.stored("account", globex)
        assert stored[f(crm_harness, "account", "health_status")] == "neutral"
        assert stored[f(crm_harness, "account", "at_risk")] is False
        assert crm_harness.stored("account", acme)[nps] is None
        mirror.sync(crm_harness.connector())
        again = plan(
            changed, crm_harness.specs, crm_harness.name, "account", mirror.read_back("account")
        )
        assert again == [], differences(again, mirror.read_back("account"))

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
- an incremental read from the cursor of an earlier read, merged into that read
  (records upserted by id, ``deleted_ids`` removed), equals a full read now; it may
  return unchanged records again, but must return the changed ones;
- ``check_fields`` is clean for a provisioned CRM and names a missing field together
  with ``ax-agent crm provision <crm>``;
- ``write`` changes exactly the given fields of exactly the given records, answers
  one outcome per update in order, reports a refused record without failing the
  rest, and a full batch (``max_write_batch``) is one counted update call;
- with write-back planned from confirmed values, a second cycle with nothing
  changed makes zero update calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest

from agent.batching import chunked
from agent.config import FieldSpec, ObjectKind
from agent.models import Account, Contact
from agent.ports import Batch, CrmConnector, FieldUpdate, FieldValue

__all__ = [
    "SEED_ACCOUNTS",
    "SEED_CONTACTS",
    "CrmContract",
    "CrmHarness",
    "SeedAccount",
    "SeedContact",
]


@dataclass(frozen=True, slots=True)
class SeedAccount:
    key: str
    name: str
    website: str
    revenue: float
    owner_email: str | None = None


@dataclass(frozen=True, slots=True)
class SeedContact:
    key: str
    account_key: str
    email: str
    name: str
    title: str


SEED_ACCOUNTS: tuple[SeedAccount, ...] = (
    SeedAccount("acme", "Acme GmbH", "https://www.acme.example/", 120000.0, "rep@vendor.example"),
    SeedAccount("globex", "Globex Corp", "globex.example", 55000.5),
    SeedAccount("initech", "Initech", "http://initech.example/about", 0.0),
)
SEED_CONTACTS: tuple[SeedContact, ...] = (
    SeedContact("ann", "acme", "ann@acme.example", "Ann Berg", "Chief Executive Officer"),
    SeedContact("bob", "acme", "bob@acme.example", "Bob Cole", "Support Agent"),
    SeedContact("cy", "globex", "cy@globex.example", "Cy Dorn", "Head of IT"),
    SeedContact("di", "initech", "di@initech.example", "Di Eck", ""),
)


class CrmHarness(Protocol):
    """What a connector's contract test supplies as the ``crm_harness`` fixture."""

    #: The connector's ``name``: also which ``FieldSpec`` attribute names its fields.
    name: str
    #: The agent's fields as provisioned in the fake CRM.
    specs: Sequence[FieldSpec]

    def seed(
        self, accounts: Sequence[SeedAccount], contacts: Sequence[SeedContact]
    ) -> dict[str, str]:
        """Create records (fields provisioned); return seed key -> CRM id."""
        ...

    def connector(self) -> CrmConnector:
        """A new connector on this CRM."""
        ...

    def rename_account(self, record_id: str, name: str) -> None:
        """Change an account so it shows as changed well after the seed (beyond any overlap)."""
        ...

    def delete_account(self, record_id: str) -> None:
        """Delete an account, later than the seed as above."""
        ...

    def drop_field(self, spec: FieldSpec) -> None:
        """Make one of the agent's fields missing from the CRM."""
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


def _read(batches: Iterable[Batch[Any]]) -> tuple[dict[str, Any], list[str], str | None]:
    records: dict[str, Any] = {}
    deleted: list[str] = []
    cursor: str | None = None
    for batch in batches:
        records.update((r.id, r) for r in batch.records)
        deleted.extend(batch.deleted_ids)
        cursor = batch.cursor or cursor
    return records, deleted, cursor


def _plan(
    desired: Mapping[str, Mapping[str, FieldValue]],
    confirmed: Mapping[str, Mapping[str, FieldValue]],
) -> list[FieldUpdate]:
    """Only values that differ from what the CRM confirmed.

    The smallest planner that states the contract; switch to ``agent.writeback``'s
    planner once it is merged (it keeps confirmed values in the state store).
    """
    updates = []
    for record_id, values in desired.items():
        have = confirmed.get(record_id, {})
        changed = {k: v for k, v in values.items() if k not in have or have[k] != v}
        if changed:
            updates.append(FieldUpdate(record_id, changed))
    return updates


def _cycle(
    connector: CrmConnector,
    obj: ObjectKind,
    desired: Mapping[str, Mapping[str, FieldValue]],
    confirmed: dict[str, dict[str, FieldValue]],
) -> int:
    """Plan, write in full batches, confirm what the CRM accepted; return updates sent."""
    updates = _plan(desired, confirmed)
    for batch in chunked(updates, connector.max_write_batch):
        for update, outcome in zip(batch, connector.write(obj, batch), strict=True):
            if outcome.ok:
                confirmed.setdefault(update.record_id, {}).update(update.values)
    return len(updates)


class CrmContract:
    """Subclass in a ``Test…`` class and supply the ``crm_harness`` fixture."""

    @pytest.fixture
    def ids(self, crm_harness: CrmHarness) -> dict[str, str]:
        return crm_harness.seed(SEED_ACCOUNTS, SEED_CONTACTS)

    def field(self, harness: CrmHarness, obj: ObjectKind, logical: str) -> str:
        spec = next(s for s in harness.specs if s.object == obj and s.logical == logical)
        return str(getattr(spec, harness.name))

    # -- reading ------------------------------------------------------------------------

    def test_full_read_returns_every_seeded_account(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        accounts, deleted, cursor = _read(crm_harness.connector().read_accounts(None))
        assert set(accounts) == {ids[a.key] for a in SEED_ACCOUNTS}
        assert deleted == []
        assert cursor is not None
        for seed in SEED_ACCOUNTS:
            account: Account = accounts[ids[seed.key]]
            assert account.name == seed.name
            assert account.revenue == seed.revenue
            assert _domain(seed.website) in {_domain(d) for d in account.domains}
            assert account.owner_email == seed.owner_email

    def test_full_read_returns_every_seeded_contact(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        contacts, _, cursor = _read(crm_harness.connector().read_contacts(None))
        assert set(contacts) == {ids[c.key] for c in SEED_CONTACTS}
        assert cursor is not None
        for seed in SEED_CONTACTS:
            contact: Contact = contacts[ids[seed.key]]
            assert contact.account_id == ids[seed.account_key]
            assert contact.email == seed.email
            assert contact.name == seed.name
            assert contact.title == seed.title

    def test_incremental_read_returns_changes_and_drops_deletions(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        connector = crm_harness.connector()
        state, _, cursor = _read(connector.read_accounts(None))
        crm_harness.rename_account(ids["globex"], "Globex International")
        crm_harness.delete_account(ids["initech"])
        changed, deleted, new_cursor = _read(connector.read_accounts(cursor))
        assert changed[ids["globex"]].name == "Globex International"
        assert ids["initech"] not in changed
        state.update(changed)
        for record_id in deleted:
            state.pop(record_id, None)
        now, _, _ = _read(crm_harness.connector().read_accounts(None))
        assert {k: v.name for k, v in state.items()} == {k: v.name for k, v in now.items()}
        assert new_cursor is not None

    # -- checking -----------------------------------------------------------------------

    def test_check_fields_is_clean_when_provisioned(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        assert crm_harness.connector().check_fields(crm_harness.specs) == []

    def test_check_fields_names_a_missing_field_and_the_provision_command(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        spec = next(s for s in crm_harness.specs if s.object == "account" and s.logical == "nps")
        crm_harness.drop_field(spec)
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
        accounts, _, _ = _read(connector.read_accounts(None))
        assert accounts[acme].name == "Acme GmbH"

    def test_write_round_trips_every_kind_of_value_and_none_clears(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        values: dict[str, FieldValue] = {
            self.field(crm_harness, "account", "health_score"): 71,
            self.field(crm_harness, "account", "contact_coverage"): 50,
            self.field(crm_harness, "account", "respondents"): 3,
            self.field(crm_harness, "account", "upsell_candidate"): True,
            self.field(crm_harness, "account", "health_status"): "healthy",
            self.field(crm_harness, "account", "tiers_covered"): ("executive", "management"),
            self.field(crm_harness, "account", "last_response_at"): datetime(
                2024, 5, 1, 12, 30, tzinfo=UTC
            ),
        }
        acme = ids["acme"]
        connector = crm_harness.connector()
        (outcome,) = connector.write("account", [FieldUpdate(acme, values)])
        assert outcome.ok
        stored = crm_harness.stored("account", acme)
        for name, value in values.items():
            if isinstance(value, tuple):
                assert set(stored[name] or ()) == set(value), name
            else:
                assert stored[name] == value, name
        status = self.field(crm_harness, "account", "health_status")
        (cleared,) = connector.write("account", [FieldUpdate(acme, {status: None})])
        assert cleared.ok
        assert crm_harness.stored("account", acme)[status] is None

    def test_write_reports_a_refused_record_and_applies_the_rest(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        nps = self.field(crm_harness, "account", "nps")
        crm_harness.delete_account(ids["initech"])
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
            SeedAccount(f"a{i}", f"Account {i}", f"a{i}.example", float(i)) for i in range(size)
        ]
        ids = crm_harness.seed(seeds, ())
        respondents = self.field(crm_harness, "account", "respondents")
        before = crm_harness.update_calls()
        updates = [FieldUpdate(ids[s.key], {respondents: 2}) for s in seeds]
        assert all(o.ok for o in connector.write("account", updates))
        assert crm_harness.update_calls() == before + 1

    def test_second_cycle_with_nothing_changed_makes_zero_update_calls(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        nps = self.field(crm_harness, "account", "nps")
        status = self.field(crm_harness, "account", "health_status")
        tier = self.field(crm_harness, "contact", "tier")
        desired_accounts = {
            ids["acme"]: {nps: 40.0, status: "healthy"},
            ids["globex"]: {nps: -20.0, status: "at_risk"},
        }
        desired_contacts = {ids["ann"]: {tier: "executive"}, ids["bob"]: {tier: "frontline"}}
        connector = crm_harness.connector()
        confirmed_accounts: dict[str, dict[str, FieldValue]] = {}
        confirmed_contacts: dict[str, dict[str, FieldValue]] = {}
        assert _cycle(connector, "account", desired_accounts, confirmed_accounts) == 2
        assert _cycle(connector, "contact", desired_contacts, confirmed_contacts) == 2
        calls = crm_harness.update_calls()
        assert calls > 0
        assert _cycle(connector, "account", desired_accounts, confirmed_accounts) == 0
        assert _cycle(connector, "contact", desired_contacts, confirmed_contacts) == 0
        assert crm_harness.update_calls() == calls

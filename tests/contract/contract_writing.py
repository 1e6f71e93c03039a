"""The contract's writing tests (see ``crm_contract``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from contract_harness import ContractBase, CrmHarness
from contract_support import SeedAccount, read_all

from agent.core.contract import ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import FieldUpdate, FieldValue
from agent.sync.writeback import crm_field, execute, normalise

__all__ = ["WritingContract"]


class WritingContract(ContractBase):
    """Exact writes, outcomes, refused records and update calls per batch."""

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
        assert {k: stored[k] for k in values} == values
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
        record: Account | Contact = (
            read_all(connector.read_accounts(None)).records[record_id]
            if obj == "account"
            else read_all(connector.read_contacts(None)).records[record_id]
        )
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

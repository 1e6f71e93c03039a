"""The CRM connector contract, run against the Salesforce connector and a fake org."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest
import responses
from contract_support import SeedAccount, SeedContact
from crm_contract import CrmContract

from agent.config.settings import SalesforceSettings
from agent.core.contract import FieldSpec, ObjectKind, default_field_specs
from agent.core.ports import CrmConnector, FieldValue
from connectors.common.retry import RetryPolicy
from connectors.salesforce import from_settings
from connectors.salesforce.records import decode_value
from connectors.salesforce.schema import SOBJECTS
from tests.salesforce.fake import FakeSalesforce, add_agent_fields

_LATER = 3600.0  # seconds between the seed and a change: beyond the read overlap


class SalesforceHarness:
    name = "salesforce"
    refuses_records = True
    has_schema = True

    def __init__(self, fake: FakeSalesforce) -> None:
        self.fake = fake
        self.specs: Sequence[FieldSpec] = default_field_specs()
        add_agent_fields(fake, self.specs)

    def seed(
        self, accounts: Sequence[SeedAccount], contacts: Sequence[SeedContact]
    ) -> dict[str, str]:
        org = self.fake.org
        ids: dict[str, str] = {}
        for a in accounts:
            owner = org.insert("User", {"Email": a.owner_email}) if a.owner_email else None
            values = {
                "Name": a.name,
                "Website": a.website,
                "AnnualRevenue": a.revenue,
                "OwnerId": owner,
            }
            ids[a.key] = org.insert("Account", values)
        for c in contacts:
            values = {
                "AccountId": ids[c.account_key],
                "Email": c.email,
                "Name": c.name,
                "Title": c.title,
            }
            ids[c.key] = org.insert("Contact", values)
        return ids

    def connector(self) -> CrmConnector:
        sf = SalesforceSettings(session_id="fake-session", instance_url=self.fake.instance_url)
        policy = RetryPolicy(attempts=3, initial=0.01, maximum=0.01, sleep=lambda _s: None)
        return from_settings(sf, policy=policy)

    def rename(self, obj: ObjectKind, record_id: str, name: str) -> None:
        self.fake.org.tick(_LATER)
        self.fake.org.update(SOBJECTS[obj], record_id, {"Name": name})

    def delete(self, obj: ObjectKind, record_id: str) -> None:
        self.fake.org.tick(_LATER)
        self.fake.org.delete(SOBJECTS[obj], record_id)

    def drop_field(self, spec: FieldSpec) -> None:
        self.fake.org.drop_field(SOBJECTS[spec.object], spec.salesforce)

    def stored(self, obj: ObjectKind, record_id: str) -> Mapping[str, FieldValue]:
        record = self.fake.org.records[SOBJECTS[obj]][record_id]
        return {
            s.salesforce: decode_value(s, record.get(s.salesforce))
            for s in self.specs
            if s.object == obj
        }

    def update_calls(self) -> int:
        return self.fake.calls["collection"] + self.fake.calls["composite_write"]


class TestSalesforceContract(CrmContract):
    @pytest.fixture
    def crm_harness(self) -> Iterator[SalesforceHarness]:
        fake = FakeSalesforce(instance_url="https://contract.my.salesforce.com")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            for method in ("GET", "POST", "PATCH"):
                rsps.add_callback(method, fake.url_pattern, callback=fake)
            yield SalesforceHarness(fake)

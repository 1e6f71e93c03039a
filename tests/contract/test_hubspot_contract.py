"""The CRM connector contract, run against the HubSpot connector and a fake portal.

``HubSpotContractHarness`` adapts ``tests.hubspot.harness.HubSpotHarness`` (a seeded
fake portal on a loopback server) to the suite's ``CrmHarness``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest
from contract_support import SeedAccount, SeedContact
from crm_contract import CrmContract

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import CrmConnector, FieldValue
from connectors.hubspot.mapping import OBJECT_TYPES
from tests.hubspot.harness import HubSpotHarness, build_connector, open_harness

_LATER = 3600.0  # seconds between the seed and a change: beyond the read overlap


class HubSpotContractHarness:
    name = "hubspot"
    refuses_records = True
    has_schema = True

    def __init__(self, harness: HubSpotHarness) -> None:
        self.harness = harness
        self.specs: Sequence[FieldSpec] = harness.specs

    def seed(
        self, accounts: Sequence[SeedAccount], contacts: Sequence[SeedContact]
    ) -> dict[str, str]:
        ids: dict[str, str] = {}
        for a in accounts:
            account = Account(
                id="",
                name=a.name,
                domains=(a.website,),
                revenue=a.revenue,
                owner_email=a.owner_email,
            )
            ids[a.key] = self.harness.seed_account(account)
        for c in contacts:
            contact = Contact(
                id="", account_id=ids[c.account_key], email=c.email, name=c.name, title=c.title
            )
            ids[c.key] = self.harness.seed_contact(contact)
        return ids

    def connector(self) -> CrmConnector:
        return build_connector(self.harness.portal, self.harness.base_url)

    def rename(self, obj: ObjectKind, record_id: str, name: str) -> None:
        self.harness.advance(_LATER)
        self.harness.rename(obj, record_id, name)

    def delete(self, obj: ObjectKind, record_id: str) -> None:
        self.harness.advance(_LATER)
        self.harness.delete(obj, record_id)

    def drop_field(self, spec: FieldSpec) -> None:
        del self.harness.portal.properties[OBJECT_TYPES[spec.object]][spec.hubspot]

    def stored(self, obj: ObjectKind, record_id: str) -> Mapping[str, FieldValue]:
        return self.harness.read_back(obj, record_id)

    def update_calls(self) -> int:
        return self.harness.update_calls


class TestHubSpotContract(CrmContract):
    @pytest.fixture
    def crm_harness(self) -> Iterator[HubSpotContractHarness]:
        with open_harness() as harness:
            yield HubSpotContractHarness(harness)

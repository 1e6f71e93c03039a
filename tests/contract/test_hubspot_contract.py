"""The CRM connector and task contracts, run against the HubSpot connector and a fake portal.

``HubSpotContractHarness`` adapts ``tests.hubspot.harness.HubSpotHarness`` (a seeded
fake portal on a loopback server) to the suite's ``CrmHarness``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

import pytest
from contract_support import SeedAccount, SeedContact
from contract_tasks import FALLBACK, INACTIVE, OWNER, StoredTask, TaskContract
from crm_contract import CrmContract

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import CrmConnector, FieldValue, TaskCrm
from agent.rules.facts import build_inputs
from agent.state.store import StateStore
from agent.tasks.plan import PlannedTask
from agent.tasks.sync import TaskReport
from connectors.hubspot.mapping import OBJECT_TYPES
from tests.alerting.factories import document
from tests.hubspot.harness import HubSpotHarness, build_connector, open_harness
from tests.tasks.planned import NOW

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


class HubSpotTaskHarness:
    """HubSpot ``tasks`` objects on the fake portal, seeded for the task contract.

    Requests are checked against HubSpot's documented shapes by the portal itself:
    batch create (``crm/v3/objects/tasks/batch/create``, at most 100 inputs, all or
    nothing, associations of type 192 to the company and 204 to the contact), batch
    read by ``ax_alert_key`` (``idProperty``), search on ``hs_lastmodifieddate``,
    batch update of ``hs_task_status``, and the owners list (an archived owner is not
    active). A refused task names a contact that does not exist.
    """

    name = "hubspot"
    per_call = 100
    _MISSING_CONTACT = "999999"

    def __init__(self, harness: HubSpotHarness) -> None:
        self.harness = harness
        self.portal = portal = harness.portal
        portal.define("tasks", "ax_alert_key", "string", "text")
        self.users = {OWNER: "501", FALLBACK: "503"}
        portal.add_owner("501", OWNER)
        portal.add_owner("502", INACTIVE, archived=True)
        portal.add_owner("503", FALLBACK)
        self.account = portal.add_company(name="Acme", domain="acme.example")
        self.contact = portal.add_contact(company=self.account, email="dana@acme.example")

    def task_crm(self) -> TaskCrm:
        connector = build_connector(self.portal, self.harness.base_url)
        return connector.task_crm()

    def create_calls(self) -> int:
        return len(self.portal.calls("POST", r"/crm/v3/objects/tasks/batch/create"))

    def owner_lookups(self) -> int:
        return len(self.portal.calls("GET", r"/crm/v3/owners/?"))

    def stored(self) -> dict[str, StoredTask]:
        links = self.portal.links
        out: dict[str, StoredTask] = {}
        for record in self.portal.stores["tasks"].live.values():
            p = record.properties
            companies = links.get(("tasks", "companies"), {}).get(record.id, [])
            contacts = links.get(("tasks", "contacts"), {}).get(record.id, [])
            out[str(p.get("ax_alert_key"))] = StoredTask(
                task_id=record.id,
                account_id=companies[0][0] if companies else None,
                contact_id=contacts[0][0] if contacts else None,
                owner_id=p.get("hubspot_owner_id"),
                subject=p.get("hs_task_subject"),
                completed=p.get("hs_task_status") == "COMPLETED",
            )
        return out

    def complete(self, task_id: str) -> None:
        self.portal.tick(60_000)  # a minute on: beyond the incremental search's overlap
        self.portal.modify("tasks", task_id, hs_task_status="COMPLETED")

    def refused(self, task: PlannedTask) -> PlannedTask:
        return replace(task, contact_id=self._MISSING_CONTACT)

    def accept_refused(self) -> None:
        self.portal.add_contact(
            self._MISSING_CONTACT, company=self.account, email="late@acme.example"
        )


class TestHubSpotTaskContract(TaskContract):
    @pytest.fixture
    def task_harness(self) -> Iterator[HubSpotTaskHarness]:
        with open_harness() as harness:
            yield HubSpotTaskHarness(harness)

    def test_requests_are_shaped_as_hubspot_documents_them(
        self, task_harness: HubSpotTaskHarness, store: StateStore
    ) -> None:
        portal = task_harness.portal
        sync = self.sync(store, task_harness)
        tasks = self.planned(task_harness, 2)
        sync.repo.record(tasks)
        sync.repo.mark_attempt([tasks[0].key], {})  # maybe sent before: looked up first

        self.create(sync)
        task_harness.complete(task_harness.stored()[tasks[0].key].task_id)
        sync.read_back(NOW)
        sync.repo.request_completion({tasks[1].key: (NOW, "U42")})
        sync.push_closures(build_inputs(document([]), []), NOW, TaskReport())

        lookup = portal.calls("POST", r"/crm/v3/objects/tasks/search")[0].body
        assert lookup["filterGroups"] == [
            {
                "filters": [
                    {"propertyName": "ax_alert_key", "operator": "IN", "values": [tasks[0].key]}
                ]
            }
        ]
        create = portal.calls("POST", r"/crm/v3/objects/tasks/batch/create")[0].body
        first = create["inputs"][0]
        assert set(first["properties"]) == {
            "hs_task_subject",
            "hs_task_body",
            "hs_timestamp",
            "hs_task_priority",
            "hs_task_status",
            "hubspot_owner_id",
            "ax_alert_key",
        }
        assert first["associations"] == [
            {
                "to": {"id": task_harness.account},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
            },
            {
                "to": {"id": task_harness.contact},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
            },
        ]
        read_back = portal.calls("POST", r"/crm/v3/objects/tasks/search")[-1].body
        filters = read_back["filterGroups"][0]["filters"]
        assert {"propertyName": "ax_alert_key", "operator": "HAS_PROPERTY"} in filters
        assert any(f["propertyName"] == "hs_lastmodifieddate" for f in filters)
        assert "hs_task_status" in read_back["properties"]
        update = portal.calls("POST", r"/crm/v3/objects/tasks/batch/update")[-1].body
        done = task_harness.stored()[tasks[1].key]
        assert update == {
            "inputs": [{"id": done.task_id, "properties": {"hs_task_status": "COMPLETED"}}]
        }

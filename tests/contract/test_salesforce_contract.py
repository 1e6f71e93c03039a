"""The CRM connector and task contracts, run against the Salesforce connector and a fake org."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace

import pytest
import responses
from contract_support import SeedAccount, SeedContact
from contract_tasks import FALLBACK, INACTIVE, OWNER, StoredTask, TaskContract
from crm_contract import CrmContract

from agent.config.settings import SalesforceSettings
from agent.core.contract import FieldSpec, ObjectKind, default_field_specs
from agent.core.ports import CrmConnector, FieldValue, TaskCrm
from agent.tasks.plan import PlannedTask
from connectors.common.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector, from_settings
from connectors.salesforce.records import decode_value
from connectors.salesforce.schema import SOBJECTS
from tests.salesforce.fake import FakeSalesforce, add_agent_fields, add_task_key
from tests.salesforce.fake.org import close_task

_LATER = 3600.0  # seconds between the seed and a change: beyond the read overlap


@contextmanager
def _served() -> Iterator[FakeSalesforce]:
    """A fake org answering the connector's requests (through ``responses``)."""
    fake = FakeSalesforce(instance_url="https://contract.my.salesforce.com")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in ("GET", "POST", "PATCH"):
            rsps.add_callback(method, fake.url_pattern, callback=fake)
        yield fake


def _connector(fake: FakeSalesforce) -> SalesforceConnector:
    sf = SalesforceSettings(session_id="fake-session", instance_url=fake.instance_url)
    policy = RetryPolicy(attempts=3, initial=0.01, maximum=0.01, sleep=lambda _s: None)
    return from_settings(sf, policy=policy)


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
        return _connector(self.fake)

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
        with _served() as fake:
            yield SalesforceHarness(fake)


class SalesforceTaskHarness:
    """Salesforce ``Task`` records on the fake org, seeded for the task contract.

    Created through sObject Collections packed 5 x 200 in one Composite (a counted
    call per 1,000 tasks); a refused task meets a validation rule on its subject.
    """

    name = "salesforce"
    per_call = 1000

    def __init__(self, fake: FakeSalesforce) -> None:
        self.fake = fake
        org = fake.org
        add_task_key(fake)
        self.users = {
            OWNER: org.insert("User", {"Email": "Owner1@Vendor.example", "IsActive": True}),
            FALLBACK: org.insert("User", {"Email": FALLBACK, "IsActive": True}),
        }
        org.insert("User", {"Email": INACTIVE, "IsActive": False})
        self.account = org.insert("Account", {"Name": "Acme", "Website": "acme.example"})
        self.contact = org.insert(
            "Contact", {"AccountId": self.account, "Email": "dana@acme.example", "Name": "Dana"}
        )

    def task_crm(self) -> TaskCrm:
        return _connector(self.fake).task_crm()

    def create_calls(self) -> int:
        return self.fake.calls["collection_create"] + self.fake.calls["composite_write"]

    def owner_lookups(self) -> int:
        return self.fake.calls["composite_read"]

    def stored(self) -> dict[str, StoredTask]:
        return {
            str(t.get("AX_Alert_Key__c")): StoredTask(
                task_id=t["Id"],
                account_id=t.get("WhatId"),
                contact_id=t.get("WhoId"),
                owner_id=t.get("OwnerId"),
                subject=t.get("Subject"),
                completed=bool(t.get("IsClosed")),
            )
            for t in self.fake.org.records["Task"].values()
        }

    def complete(self, task_id: str) -> None:
        org = self.fake.org
        org.tick(_LATER)
        org.update("Task", task_id, {"Status": "Completed"})
        close_task(org, org.records["Task"][task_id])

    def refused(self, task: PlannedTask) -> PlannedTask:
        refused = replace(task, title=f"{task.title} (score named)")
        self.fake.create_errors[("Subject", refused.title)] = (
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "Subject must not name the score",
        )
        return refused

    def accept_refused(self) -> None:
        self.fake.create_errors.clear()


class TestSalesforceTaskContract(TaskContract):
    @pytest.fixture
    def task_harness(self) -> Iterator[SalesforceTaskHarness]:
        with _served() as fake:
            yield SalesforceTaskHarness(fake)

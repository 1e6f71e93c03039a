"""An in-memory Salesforce org at the HTTP boundary, for tests, benchmarks and demos.

``FakeSalesforce`` answers the requests the connector makes with payloads shaped like
Salesforce's documented ones; ``agent_fields`` gives it the agent's custom fields as
``ax-agent crm provision salesforce`` would create them.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.core.contract import FieldKind, FieldSpec
from tests.salesforce.fake.org import FakeField, FakeOrg
from tests.salesforce.fake.server import FakeSalesforce, Fault

__all__ = [
    "FakeField",
    "FakeOrg",
    "FakeSalesforce",
    "Fault",
    "add_agent_fields",
    "add_task_key",
    "agent_field",
]

_TYPES: dict[FieldKind, str] = {
    "number": "double",
    "percent": "percent",
    "integer": "double",
    "boolean": "boolean",
    "enum": "picklist",
    "multi": "multipicklist",
    "datetime": "datetime",
}


def agent_field(spec: FieldSpec) -> FakeField:
    """The custom field provisioning creates for ``spec``."""
    return FakeField(
        spec.salesforce,
        _TYPES[spec.kind],
        custom=True,
        picklist=spec.options,
        restricted=bool(spec.options),
        scale=spec.decimals,
    )


def add_agent_fields(fake: FakeSalesforce, specs: Iterable[FieldSpec]) -> None:
    """Give the fake org every field in ``specs`` (as if provisioned)."""
    for spec in specs:
        sobject = "Account" if spec.object == "account" else "Contact"
        fake.org.add_field(sobject, agent_field(spec))


def add_task_key(fake: FakeSalesforce) -> None:
    """Give Task the alert-key field (``Activity.AX_Alert_Key__c``), as if provisioned."""
    fake.org.add_field("Task", FakeField("AX_Alert_Key__c", "string", custom=True))

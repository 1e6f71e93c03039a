"""Creating the agent's custom fields through the Metadata API (simple-salesforce's mdapi).

``definitions`` turns the field specs into Salesforce custom-field definitions
(Number, Percent, Checkbox, restricted Picklist, Multi-Select Picklist, Date/Time);
``provision`` creates those that do not exist yet, one per call so each failure is
named, and grants read/edit access to all of them through the ``AX_Agent_Fields``
permission set, which an admin assigns to the integration user. Existing fields are
never changed: a wrong type is reported by ``crm check`` for a person to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog
from zeep.exceptions import Error as ZeepError

from agent.core.contract import FieldKind, FieldSpec
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SalesforceFatalError
from connectors.salesforce.schema import SOBJECTS

__all__ = [
    "PERMISSION_SET",
    "TASK_KEY",
    "FieldDefinition",
    "ProvisionReport",
    "definitions",
    "provision",
]

_log = structlog.get_logger(__name__)

PERMISSION_SET = "AX_Agent_Fields"
_METADATA_TYPES: dict[FieldKind, str] = {
    "number": "Number",
    "percent": "Percent",
    "integer": "Number",
    "boolean": "Checkbox",
    "enum": "Picklist",
    "multi": "MultiselectPicklist",
    "datetime": "DateTime",
}
_READ_CHUNK = 10  # the Metadata API reads at most ten components per call
#: The alert key on the agent's tasks: custom fields of Task live on Activity. An
#: external id (indexed, so the look-up by key before a create is cheap).
TASK_KEY = "Activity.AX_Alert_Key__c"


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    """One custom field the agent writes, as the Metadata API creates it."""

    sobject: str
    name: str
    kind: FieldKind
    label: str
    description: str
    scale: int = 0
    values: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.sobject}.{self.name}"

    @property
    def metadata_type(self) -> str:
        return _METADATA_TYPES[self.kind]

    def summary(self) -> str:
        """One line for ``--print``: name, type, size or values."""
        detail = {
            "Number": f"(18, {self.scale})",
            "Percent": f"(18, {self.scale})",
            "Picklist": f"[{', '.join(self.values)}] restricted",
            "MultiselectPicklist": f"[{', '.join(self.values)}] restricted",
        }.get(self.metadata_type, "")
        return f"{self.full_name:<40} {self.metadata_type} {detail}".rstrip()


def definitions(specs: Iterable[FieldSpec]) -> list[FieldDefinition]:
    """Custom-field definitions for the specs mapped to custom (``__c``) fields."""
    out = []
    for spec in specs:
        if not spec.salesforce.endswith("__c"):
            continue  # a standard field: nothing to create
        out.append(
            FieldDefinition(
                sobject=SOBJECTS[spec.object],
                name=spec.salesforce,
                kind=spec.kind,
                label=_label(spec.salesforce),
                description=f"Written by ax-agent: {spec.object} {spec.logical}.",
                scale=spec.decimals,
                values=spec.options,
            )
        )
    return out


def _label(api_name: str) -> str:
    return api_name.removesuffix("__c").replace("_", " ")[:40]


@dataclass
class ProvisionReport:
    """What provisioning found, created and could not create (with Salesforce's reason)."""

    existing: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    permission_set: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.permission_set is not None


def provision(
    client: SalesforceClient, specs: Sequence[FieldSpec], *, task_key: bool = False
) -> ProvisionReport:
    """Create the missing fields and grant access to all of them; report each outcome.

    ``task_key``: also the alert-key field of the agent's tasks (``tasks.enabled``).
    """
    mdapi = client.sdk().mdapi
    defs = definitions(specs)
    report = ProvisionReport()
    names = [d.full_name for d in defs] + ([TASK_KEY] if task_key else [])
    present = _existing(client, mdapi, names)
    for definition in defs:
        if definition.full_name in present:
            report.existing.append(definition.full_name)
            continue
        error = _create(client, mdapi, definition)
        if error is None:
            report.created.append(definition.full_name)
        else:
            report.failed[definition.full_name] = error
    if task_key:
        _task_key(client, mdapi, present, report)
    granted = [n for n in names if n not in report.failed]
    error = _grant(client, mdapi, granted)
    if error is None:
        report.permission_set = PERMISSION_SET
    else:
        report.failed[f"PermissionSet.{PERMISSION_SET}"] = error
    _log.info("salesforce_provisioned", created=report.created, failed=sorted(report.failed))
    return report


def _metadata_call(client: SalesforceClient, what: str, call: Any) -> tuple[Any, str | None]:
    """Run one Metadata API call; (result, None) or (None, why it failed)."""
    client.counter.count("metadata")
    try:
        return call(), None
    except (ZeepError, requests.RequestException) as exc:
        return None, f"{what}: {type(exc).__name__}: {exc}"
    except Exception as exc:  # simple-salesforce raises bare Exception for SaveResult errors
        return None, f"{what}: {str(exc).strip()}"


def _existing(client: SalesforceClient, mdapi: Any, full_names: Sequence[str]) -> set[str]:
    """Names of fields that exist, whether or not the integration user can see them."""
    found: set[str] = set()
    for start in range(0, len(full_names), _READ_CHUNK):
        chunk = list(full_names[start : start + _READ_CHUNK])
        result, error = _metadata_call(
            client, "readMetadata", lambda c=chunk: mdapi.CustomField.read(c)
        )
        if error is not None:
            raise SalesforceFatalError(error, status=None, code="METADATA")
        records = result if isinstance(result, list) else [result]
        found.update(
            str(r.fullName) for r in records if r is not None and getattr(r, "fullName", None)
        )
    return found


def _create(client: SalesforceClient, mdapi: Any, definition: FieldDefinition) -> str | None:
    kwargs: dict[str, Any] = {
        "fullName": definition.full_name,
        "label": definition.label,
        "description": definition.description,
        "type": definition.metadata_type,
    }
    kwargs.update(_type_attributes(mdapi, definition))
    metadata = mdapi.CustomField(**kwargs)
    _, error = _metadata_call(
        client, "createMetadata", lambda: mdapi.CustomField.create([metadata])
    )
    return error


def _task_key(
    client: SalesforceClient, mdapi: Any, present: set[str], report: ProvisionReport
) -> None:
    if TASK_KEY in present:
        report.existing.append(TASK_KEY)
        return
    metadata = mdapi.CustomField(
        fullName=TASK_KEY,
        label="AX Alert Key",
        description="Written by ax-agent: the alert key of the task, so it is created once.",
        type="Text",
        length=255,
        externalId=True,
    )
    _, error = _metadata_call(
        client, "createMetadata", lambda: mdapi.CustomField.create([metadata])
    )
    if error is None:
        report.created.append(TASK_KEY)
    else:
        report.failed[TASK_KEY] = error


def _type_attributes(mdapi: Any, definition: FieldDefinition) -> dict[str, Any]:
    kind = definition.metadata_type
    if kind in {"Number", "Percent"}:
        return {"precision": 18, "scale": definition.scale}
    if kind == "Checkbox":
        return {"defaultValue": "false"}
    if kind in {"Picklist", "MultiselectPicklist"}:
        values = [mdapi.CustomValue(fullName=v, label=v, default=False) for v in definition.values]
        value_set = mdapi.ValueSet(
            restricted=True,
            valueSetDefinition=mdapi.ValueSetValuesDefinition(sorted=False, value=values),
        )
        extra = {"visibleLines": 4} if kind == "MultiselectPicklist" else {}
        return {"valueSet": value_set, **extra}
    return {}


def _grant(client: SalesforceClient, mdapi: Any, full_names: Sequence[str]) -> str | None:
    permissions = [
        mdapi.PermissionSetFieldPermissions(field=name, editable=True, readable=True)
        for name in full_names
    ]
    permission_set = mdapi.PermissionSet(
        fullName=PERMISSION_SET,
        label="AX Agent Fields",
        description="Read and edit the fields ax-agent writes. Assign to the integration user.",
        fieldPermissions=permissions,
    )
    _, error = _metadata_call(
        client, "upsertMetadata", lambda: mdapi.PermissionSet.upsert([permission_set])
    )
    return error

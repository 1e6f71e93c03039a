"""What Account and Contact look like in this org (``describe``), and whether the
agent's fields fit: present, updateable, of a compatible type.

Describe results are cached per object for the connector's life: one call each, at
start-up, whichever of reading or checking needs them first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agent.core.contract import FieldKind, FieldSpec, ObjectKind
from agent.core.ports import FieldProblem
from connectors.salesforce.client import SalesforceClient

__all__ = [
    "COMPATIBLE_TYPES",
    "PROVISION_COMMAND",
    "SOBJECTS",
    "FieldInfo",
    "Schema",
    "check_read_fields",
    "check_specs",
]

PROVISION_COMMAND = "ax-agent crm provision salesforce"
SOBJECTS: Mapping[ObjectKind, str] = {"account": "Account", "contact": "Contact"}

#: Salesforce describe types that can hold each kind of agent figure.
COMPATIBLE_TYPES: Mapping[FieldKind, frozenset[str]] = {
    "number": frozenset({"double", "currency", "percent", "int"}),
    "percent": frozenset({"percent", "double"}),
    "integer": frozenset({"int", "double"}),
    "boolean": frozenset({"boolean"}),
    "enum": frozenset({"picklist", "string"}),
    "multi": frozenset({"multipicklist", "string"}),
    "datetime": frozenset({"datetime"}),
}
_NUMERIC = frozenset({"double", "currency", "percent", "int"})


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """The parts of a describe field result the agent relies on."""

    name: str
    type: str
    updateable: bool
    restricted_picklist: bool = False
    picklist_values: tuple[str, ...] = ()


def _field_info(raw: Mapping[str, object]) -> FieldInfo:
    values = raw.get("picklistValues") or []
    assert isinstance(values, list)
    return FieldInfo(
        name=str(raw["name"]),
        type=str(raw["type"]),
        updateable=bool(raw.get("updateable")),
        restricted_picklist=bool(raw.get("restrictedPicklist")),
        picklist_values=tuple(str(v["value"]) for v in values if v.get("active", True)),
    )


class Schema:
    """Describe results by object, fetched once each; field lookups ignore case."""

    def __init__(self, client: SalesforceClient) -> None:
        self._client = client
        self._cache: dict[str, dict[str, FieldInfo]] = {}

    def fields(self, sobject: str) -> dict[str, FieldInfo]:
        """Fields visible to the integration user, keyed by casefolded API name."""
        if sobject not in self._cache:
            body = self._client.json("describe", "GET", f"sobjects/{sobject}/describe")
            infos = (_field_info(f) for f in body["fields"])
            self._cache[sobject] = {f.name.casefold(): f for f in infos}
        return self._cache[sobject]

    def field(self, sobject: str, name: str) -> FieldInfo | None:
        return self.fields(sobject).get(name.casefold())


def check_specs(schema: Schema, specs: Iterable[FieldSpec]) -> list[FieldProblem]:
    """A problem for every mapped field that is missing, read-only or of the wrong type."""
    problems: list[FieldProblem] = []
    for spec in specs:
        info = schema.field(SOBJECTS[spec.object], spec.salesforce)
        problem = _spec_problem(spec, info)
        if problem is not None:
            problems.append(problem)
    return problems


def _spec_problem(spec: FieldSpec, info: FieldInfo | None) -> FieldProblem | None:
    sobject = SOBJECTS[spec.object]
    remap = f"or map {spec.object}.{spec.logical} to another field under fields.overrides"
    if info is None:
        return FieldProblem(
            spec.object,
            spec.salesforce,
            f"does not exist on {sobject} or is not visible to the integration user",
            f"run `{PROVISION_COMMAND}` (it creates the field and the AX_Agent_Fields "
            "permission set; assign that permission set to the integration user)",
        )
    if info.type not in COMPATIBLE_TYPES[spec.kind]:
        wanted = ", ".join(sorted(COMPATIBLE_TYPES[spec.kind]))
        return FieldProblem(
            spec.object,
            spec.salesforce,
            f"is of type {info.type} but {spec.logical} needs one of {wanted}",
            f"change the field's type in Setup {remap}",
        )
    if not info.updateable:
        return FieldProblem(
            spec.object,
            spec.salesforce,
            "is read-only for the integration user",
            "give the integration user edit access (field-level security, e.g. the "
            f"AX_Agent_Fields permission set) {remap}",
        )
    return _picklist_problem(spec, info, remap)


def _picklist_problem(spec: FieldSpec, info: FieldInfo, remap: str) -> FieldProblem | None:
    if not info.restricted_picklist or not spec.options:
        return None
    have = {v.casefold() for v in info.picklist_values}
    missing = [o for o in spec.options if o.casefold() not in have]
    if not missing:
        return None
    return FieldProblem(
        spec.object,
        spec.salesforce,
        f"is a restricted picklist without the values {', '.join(missing)}",
        f"add those values to the picklist in Setup {remap}",
    )


def check_read_fields(
    schema: Schema, reads: Sequence[tuple[ObjectKind, str, str, bool]]
) -> list[FieldProblem]:
    """Problems with configured read fields: (object, setting key, field, must be numeric)."""
    problems: list[FieldProblem] = []
    for obj, key, name, numeric in reads:
        if "." in name:
            continue  # a relationship path: Salesforce itself reports a bad one
        info = schema.field(SOBJECTS[obj], name)
        if info is None:
            problem = f"does not exist on {SOBJECTS[obj]} (configured as salesforce.{key})"
        elif numeric and info.type not in _NUMERIC:
            problem = f"is of type {info.type}, not a number (configured as salesforce.{key})"
        else:
            continue
        problems.append(
            FieldProblem(obj, name, problem, f"set salesforce.{key} to an existing field")
        )
    return problems

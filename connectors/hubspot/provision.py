"""Creating what the agent writes to: a property group and the mapped properties.

``plan_provisioning`` is pure: from the mapped fields and what the portal has, it
lists the actions (create the group, create each missing property with the right
type, add missing options to an enumeration) and the conflicts it will not touch (a
property of another type or a read-only one: an admin decides). ``apply_plan`` runs
the actions: one call per group, one batch create per object type, one update per
enumeration that lacks options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.ports import FieldProblem
from connectors.hubspot.client import HubSpotApis
from connectors.hubspot.mapping import OBJECT_TYPES
from connectors.hubspot.properties import PROVISION_FIX, Schema, expected_type, field_problems
from connectors.hubspot.records import results
from connectors.hubspot.transport import Transport

__all__ = [
    "AddOptions",
    "CreateGroup",
    "CreateProperty",
    "ProvisionPlan",
    "ProvisionResult",
    "apply_plan",
    "plan_provisioning",
    "property_definition",
]

_log = structlog.get_logger(__name__)
_BOOL_OPTIONS = (("true", "Yes"), ("false", "No"))


@dataclass(frozen=True, slots=True)
class CreateGroup:
    object_type: str
    name: str
    label: str

    def describe(self) -> str:
        return f"create property group {self.name} ({self.label!r}) on {self.object_type}"


@dataclass(frozen=True, slots=True)
class CreateProperty:
    object_type: str
    definition: Mapping[str, Any]

    def describe(self) -> str:
        d = self.definition
        options = [o["value"] for o in d.get("options", ())]
        extra = f" options {', '.join(options)}" if options else ""
        return (
            f"create {self.object_type} property {d['name']} ({d['label']!r}):"
            f" {d['type']}/{d['fieldType']}{extra}"
        )


@dataclass(frozen=True, slots=True)
class AddOptions:
    object_type: str
    name: str
    #: Every option after the change: the existing ones first, as (value, label).
    options: tuple[tuple[str, str], ...]
    added: tuple[str, ...]

    def describe(self) -> str:
        return f"add option(s) {', '.join(self.added)} to {self.object_type} property {self.name}"


Action = CreateGroup | CreateProperty | AddOptions


@dataclass(frozen=True, slots=True)
class ProvisionPlan:
    """What provisioning would do, and what it leaves to an admin."""

    actions: tuple[Action, ...] = ()
    conflicts: tuple[FieldProblem, ...] = ()

    def lines(self) -> list[str]:
        """A readable account of the plan, one line per action or conflict."""
        lines = [a.describe() for a in self.actions]
        lines += [f"cannot fix: {c}" for c in self.conflicts]
        return lines or ["nothing to do: every mapped property exists with the right type"]


@dataclass(slots=True)
class ProvisionResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _label(text: str) -> str:
    return text.replace("_", " ").strip().capitalize()


def property_definition(spec: FieldSpec, group: str) -> dict[str, Any]:
    """The PropertyCreate body (HubSpot's JSON names) for one mapped field."""
    hs_type, field_type = expected_type(spec.kind)
    definition: dict[str, Any] = {
        "name": spec.hubspot,
        "label": f"AX {_label(spec.logical)}",
        "type": hs_type,
        "fieldType": field_type,
        "groupName": group,
        "description": f"ax-agent's {spec.logical.replace('_', ' ')}; the agent overwrites it.",
        "formField": False,
    }
    pairs = _BOOL_OPTIONS if spec.kind == "boolean" else tuple((o, _label(o)) for o in spec.options)
    if hs_type in {"bool", "enumeration"}:
        definition["options"] = [
            {"label": label, "value": value, "displayOrder": i, "hidden": False}
            for i, (value, label) in enumerate(pairs)
        ]
    return definition


def plan_provisioning(
    specs: Sequence[FieldSpec],
    schemas: Mapping[ObjectKind, Schema],
    groups: Mapping[ObjectKind, set[str]],
    *,
    group: str,
    group_label: str,
) -> ProvisionPlan:
    """The actions that make every mapped field writable, and the conflicts left over."""
    actions: list[Action] = []
    conflicts: list[FieldProblem] = []
    for obj in dict.fromkeys(s.object for s in specs):
        object_type = OBJECT_TYPES[obj]
        mine = [s for s in specs if s.object == obj]
        missing = [s for s in mine if s.hubspot not in schemas[obj]]
        if missing and group not in groups[obj]:
            actions.append(CreateGroup(object_type, group, group_label))
        actions += [CreateProperty(object_type, property_definition(s, group)) for s in missing]
        for problem in field_problems([s for s in mine if s not in missing], schemas):
            spec = next(s for s in mine if s.hubspot == problem.field)
            if problem.fix == PROVISION_FIX:
                actions.append(_add_options(object_type, spec, schemas[obj]))
            else:
                conflicts.append(problem)
    return ProvisionPlan(tuple(actions), tuple(conflicts))


def _add_options(object_type: str, spec: FieldSpec, schema: Schema) -> AddOptions:
    prop = schema[spec.hubspot]
    existing = tuple(zip(prop.options, prop.labels, strict=False))
    added = tuple(o for o in spec.options if o not in prop.options)
    return AddOptions(
        object_type, spec.hubspot, existing + tuple((o, _label(o)) for o in added), added
    )


def apply_plan(transport: Transport, apis: HubSpotApis, plan: ProvisionPlan) -> ProvisionResult:
    """Run the plan's actions; failures are collected, not raised, so the rest still runs."""
    result = ProvisionResult()
    for action in plan.actions:
        if isinstance(action, CreateGroup):
            _create_group(transport, apis, action)
            result.done.append(action.describe())
    creates: dict[str, list[CreateProperty]] = {}
    for action in plan.actions:
        if isinstance(action, CreateProperty):
            creates.setdefault(action.object_type, []).append(action)
    for object_type, batch in creates.items():
        _create_properties(transport, apis, object_type, batch, result)
    for action in plan.actions:
        if isinstance(action, AddOptions):
            _update_options(transport, apis, action)
            result.done.append(action.describe())
    return result


def _create_group(transport: Transport, apis: HubSpotApis, action: CreateGroup) -> None:
    body = {"name": action.name, "label": action.label, "displayOrder": -1}
    transport.call(
        f"properties.{action.object_type}.groups.create",
        apis.properties_groups.create,
        action.object_type,
        body,
    )


def _create_properties(
    transport: Transport,
    apis: HubSpotApis,
    object_type: str,
    batch: list[CreateProperty],
    result: ProvisionResult,
) -> None:
    body = {"inputs": [dict(a.definition) for a in batch]}
    response = transport.call(
        f"properties.{object_type}.create", apis.properties_batch.create, object_type, body
    )
    created = {str(p["name"]) for p in results(response)}
    for action in batch:
        if action.definition["name"] in created:
            result.done.append(action.describe())
    for error in response.get("errors") or ():
        result.failed.append(f"{object_type}: {error.get('category')}: {error.get('message')}")
    _log.info("hubspot_properties_created", object_type=object_type, created=sorted(created))


def _update_options(transport: Transport, apis: HubSpotApis, action: AddOptions) -> None:
    options = [
        {"label": label, "value": value, "displayOrder": i, "hidden": False}
        for i, (value, label) in enumerate(action.options)
    ]
    transport.call(
        f"properties.{action.object_type}.update",
        apis.properties_core.update,
        action.object_type,
        action.name,
        {"options": options},
    )

"""The portal's property definitions, and whether the agent's fields fit them.

``fetch_schema`` reads ``GET /crm/v3/properties/{type}`` (one call per object type).
``field_problems`` compares the mapped fields with it: a missing property, a property
of another type, one whose value HubSpot computes (read-only), or an enumeration that
lacks some of the values the agent writes. ``read_problems`` does the same for the
properties a read depends on (revenue, potential, tier, extras), whose absence would
otherwise read silently as empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.core.contract import FieldKind, FieldSpec, ObjectKind
from agent.core.ports import FieldProblem
from connectors.hubspot.client import HubSpotApis
from connectors.hubspot.records import results
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.transport import Transport

__all__ = [
    "PROVISION_FIX",
    "PropertyInfo",
    "Schema",
    "accepts",
    "expected_type",
    "fetch_groups",
    "fetch_schema",
    "field_problems",
    "read_problems",
]

PROVISION_FIX = "ax-agent crm provision hubspot"

#: HubSpot (type, fieldType) the agent creates for each kind of field.
_CREATED: Mapping[FieldKind, tuple[str, str]] = {
    "number": ("number", "number"),
    "percent": ("number", "number"),
    "integer": ("number", "number"),
    "boolean": ("bool", "booleancheckbox"),
    "enum": ("enumeration", "select"),
    "multi": ("enumeration", "checkbox"),
    "datetime": ("datetime", "date"),
}


@dataclass(frozen=True, slots=True)
class PropertyInfo:
    """What the agent needs to know about one HubSpot property."""

    name: str
    type: str
    field_type: str
    options: tuple[str, ...] = ()
    #: The options' labels, in the order of ``options``.
    labels: tuple[str, ...] = ()
    read_only: bool = False
    group: str = ""


#: Property name -> definition, per HubSpot object type.
Schema = Mapping[str, PropertyInfo]


def expected_type(kind: FieldKind) -> tuple[str, str]:
    """The (type, fieldType) provisioning gives a field of ``kind``."""
    return _CREATED[kind]


def accepts(kind: FieldKind, prop: PropertyInfo) -> bool:
    """Whether values of ``kind`` can be written to ``prop`` and read back unchanged."""
    if kind in {"number", "percent", "integer"}:
        return prop.type == "number"
    if kind == "boolean":
        return prop.type == "bool" or prop.field_type == "booleancheckbox"
    if kind == "enum":
        return prop.type == "enumeration" and prop.field_type in {"select", "radio"}
    if kind == "multi":
        return prop.type == "enumeration" and prop.field_type == "checkbox"
    return prop.type == "datetime"


def fetch_schema(
    transport: Transport, apis: HubSpotApis, object_type: str
) -> dict[str, PropertyInfo]:
    """Every property of ``object_type``: one call."""
    response = transport.call(
        f"properties.{object_type}.list", apis.properties_core.get_all, object_type
    )
    return {str(p["name"]): _info(p) for p in results(response)}


def fetch_groups(transport: Transport, apis: HubSpotApis, object_type: str) -> set[str]:
    """The names of the property groups of ``object_type``: one call."""
    response = transport.call(
        f"properties.{object_type}.groups",
        apis.properties_groups.get_all,
        object_type,
    )
    return {str(g["name"]) for g in results(response)}


def field_problems(
    specs: Sequence[FieldSpec], schemas: Mapping[ObjectKind, Schema]
) -> list[FieldProblem]:
    """Each mapped field HubSpot lacks or cannot take, with the fix."""
    problems: list[FieldProblem] = []
    for spec in specs:
        prop = schemas[spec.object].get(spec.hubspot)
        problem = _problem(spec, prop)
        if problem is not None:
            problems.append(problem)
    return problems


def read_problems(
    settings: HubSpotSettings, schemas: Mapping[ObjectKind, Schema]
) -> list[FieldProblem]:
    """Configured read properties that do not exist (they would read as empty)."""
    wanted: list[tuple[ObjectKind, str, str]] = [
        ("account", settings.revenue_property, "revenue_property"),
        *(("account", p, "potential_property") for p in [settings.potential_property] if p),
        *(("account", p, "extra_properties") for p in settings.extra_properties),
        *(("contact", p, "tier_property") for p in [settings.tier_property] if p),
    ]
    return [
        FieldProblem(
            object=obj,
            field=name,
            problem=f"configured as hubspot.{key} but HubSpot has no such property",
            fix=f"set hubspot.{key} to an existing property name",
        )
        for obj, name, key in wanted
        if name not in schemas[obj]
    ]


def _problem(spec: FieldSpec, prop: PropertyInfo | None) -> FieldProblem | None:
    def found(problem: str, fix: str = PROVISION_FIX) -> FieldProblem:
        return FieldProblem(object=spec.object, field=spec.hubspot, problem=problem, fix=fix)

    if prop is None:
        return found("missing in HubSpot")
    if not accepts(spec.kind, prop):
        want = "/".join(expected_type(spec.kind))
        return found(
            f"is {prop.type}/{prop.field_type} but the agent writes {spec.kind} ({want})",
            f"map fields.overrides.{spec.object}.{spec.logical}.hubspot to a {want} property",
        )
    if prop.read_only:
        return found(
            "is read-only (HubSpot computes its value)",
            f"map fields.overrides.{spec.object}.{spec.logical}.hubspot to a writable property",
        )
    missing = [o for o in _written_options(spec) if o not in prop.options]
    if missing:
        return found(f"lacks the option(s) {', '.join(missing)}")
    return None


def _written_options(spec: FieldSpec) -> tuple[str, ...]:
    return spec.options if spec.kind in {"enum", "multi"} else ()


def _info(prop: Mapping[str, Any]) -> PropertyInfo:
    meta = prop.get("modificationMetadata") or {}
    options = list(prop.get("options") or ())
    return PropertyInfo(
        name=str(prop.get("name", "")),
        type=str(prop.get("type", "")),
        field_type=str(prop.get("fieldType", "")),
        options=tuple(str(o.get("value", "")) for o in options),
        labels=tuple(str(o.get("label", "")) for o in options),
        read_only=bool(meta.get("readOnlyValue")) or bool(prop.get("calculated")),
        group=str(prop.get("groupName") or ""),
    )

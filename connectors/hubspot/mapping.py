"""HubSpot companies and contacts as the agent's Account and Contact values.

Which properties a read asks for, and how their strings become typed fields: domains
from the ``;``-separated domain properties, revenue from the configured property
(empty or unreadable is 0), the agent's own fields parsed into ``crm_values`` keyed by
their HubSpot names so the write-back planner can compare like with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from connectors.hubspot.records import HsRecord
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.values import parse_number, parse_value

__all__ = [
    "OBJECT_TYPES",
    "company_properties",
    "contact_properties",
    "crm_values",
    "merged_ids",
    "to_account",
    "to_contact",
]

_log = structlog.get_logger(__name__)

#: The HubSpot object type behind each of the agent's object kinds.
OBJECT_TYPES: Mapping[ObjectKind, str] = {"account": "companies", "contact": "contacts"}
_MERGED = "hs_merged_object_ids"


def _unique(names: Sequence[str | None]) -> list[str]:
    return list(dict.fromkeys(n for n in names if n))


def company_properties(settings: HubSpotSettings, specs: Sequence[FieldSpec]) -> list[str]:
    """Every company property a read needs, once each."""
    return _unique(
        [
            "name",
            *settings.domain_properties,
            settings.revenue_property,
            settings.potential_property,
            "hubspot_owner_id",
            *settings.extra_properties,
            settings.company_modified_property,
            _MERGED,
            *(s.hubspot for s in specs if s.object == "account"),
        ]
    )


def contact_properties(settings: HubSpotSettings, specs: Sequence[FieldSpec]) -> list[str]:
    """Every contact property a read needs, once each."""
    return _unique(
        [
            "email",
            "firstname",
            "lastname",
            "jobtitle",
            settings.tier_property,
            settings.contact_modified_property,
            _MERGED,
            *(s.hubspot for s in specs if s.object == "contact"),
        ]
    )


def merged_ids(record: HsRecord) -> list[str]:
    """Ids of records merged into this one: gone from HubSpot, so deleted for the agent."""
    raw = record.prop(_MERGED) or ""
    return [part.strip() for part in raw.split(";") if part.strip() and part.strip() != record.id]


def crm_values(record: HsRecord, specs: Sequence[FieldSpec], obj: ObjectKind) -> dict[str, object]:
    """What HubSpot holds now in the agent's fields, typed like the planner's values."""
    return {
        s.hubspot: parse_value(record.properties.get(s.hubspot), s.kind)
        for s in specs
        if s.object == obj
    }


def to_account(
    record: HsRecord,
    settings: HubSpotSettings,
    specs: Sequence[FieldSpec],
    owner_email: str | None,
) -> Account:
    """An Account from a company record."""
    return Account(
        id=record.id,
        name=record.prop("name") or "",
        domains=_domains(record, settings.domain_properties),
        revenue=_revenue(record, settings.revenue_property),
        revenue_potential=parse_number(record.prop(settings.potential_property)),
        owner_email=owner_email,
        attributes={
            name: value
            for name in settings.extra_properties
            if (value := record.prop(name)) is not None
        },
        crm_values=crm_values(record, specs, "account"),
    )


def to_contact(
    record: HsRecord,
    settings: HubSpotSettings,
    specs: Sequence[FieldSpec],
    company_id: str | None,
) -> Contact:
    """A Contact from a contact record; no company gives an ``account_id`` of ``""``."""
    name = " ".join(p for p in (record.prop("firstname"), record.prop("lastname")) if p)
    return Contact(
        id=record.id,
        account_id=company_id or "",
        email=record.prop("email"),
        name=name,
        title=record.prop("jobtitle") or "",
        crm_tier=record.prop(settings.tier_property),
        crm_values=crm_values(record, specs, "contact"),
    )


def _domains(record: HsRecord, names: Sequence[str]) -> tuple[str, ...]:
    parts = (p.strip() for name in names for p in (record.prop(name) or "").split(";"))
    return tuple(dict.fromkeys(p for p in parts if p))


def _revenue(record: HsRecord, name: str) -> float:
    raw = record.prop(name)
    value = parse_number(raw)
    if value is None or value < 0:
        if raw is not None:
            _log.warning("hubspot_revenue_unreadable", company=record.id, property=name)
        return 0.0
    return value

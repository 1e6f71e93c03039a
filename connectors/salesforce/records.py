"""Raw Salesforce records (REST JSON or Bulk CSV rows) to the agent's Account and Contact.

REST nests relationship fields (``{"Owner": {"Email": ...}}``); Bulk CSV flattens
them (``"Owner.Email"``) and sends every value as text. ``value_at`` and the small
decoders here accept both, so one mapping serves both read paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.core.contract import FieldSpec
from agent.core.models import Account, Contact
from agent.core.ports import FieldValue
from connectors.salesforce.cursor import parse_stamp

__all__ = [
    "AccountMapping",
    "ContactMapping",
    "decode_value",
    "to_account",
    "to_contact",
    "value_at",
]


@dataclass(frozen=True, slots=True)
class AccountMapping:
    """Which Account fields feed which Account attribute."""

    revenue_field: str = "AnnualRevenue"
    potential_field: str | None = None
    domain_fields: Sequence[str] = ("Website",)
    extra_fields: Sequence[str] = ()
    crm_fields: Sequence[FieldSpec] = field(default_factory=tuple)

    def fields(self) -> list[str]:
        """The SOQL select list (without the bookkeeping fields)."""
        names = ["Id", "Name", "Owner.Email", self.revenue_field, *self.domain_fields]
        if self.potential_field:
            names.append(self.potential_field)
        return [*names, *self.extra_fields, *(s.salesforce for s in self.crm_fields)]


@dataclass(frozen=True, slots=True)
class ContactMapping:
    """Which Contact fields feed which Contact attribute."""

    tier_field: str | None = None
    crm_fields: Sequence[FieldSpec] = field(default_factory=tuple)

    def fields(self) -> list[str]:
        names = ["Id", "AccountId", "Email", "Name", "Title"]
        if self.tier_field:
            names.append(self.tier_field)
        return [*names, *(s.salesforce for s in self.crm_fields)]


def value_at(raw: Mapping[str, Any], path: str) -> Any:
    """The value of a field or relationship path, from nested JSON or a flat CSV row."""
    if path in raw:
        return raw[path]
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = _get_ci(node, part)
    return node


def _get_ci(node: Mapping[str, Any], key: str) -> Any:
    if key in node:
        return node[key]
    folded = key.casefold()
    return next((v for k, v in node.items() if k.casefold() == folded), None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _domains(raw: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in fields:
        text = _text(value_at(raw, name))
        if text:
            out.extend(p.strip() for p in text.split(";") if p.strip())
    return tuple(out)


def _integer(value: Any) -> float | int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else number


def _boolean(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def _multi(value: Any) -> tuple[str, ...]:
    return tuple(p for p in str(value).split(";") if p)


_DECODERS: Mapping[str, Callable[[Any], FieldValue]] = {
    "number": _number,
    "percent": _number,
    "integer": _integer,
    "boolean": _boolean,
    "multi": _multi,
    "datetime": lambda v: parse_stamp(str(v)),
    "enum": str,
}


def decode_value(spec: FieldSpec, value: Any) -> FieldValue:
    """What the CRM holds in one of the agent's fields, as a ``FieldValue``."""
    if value is None or value == "":
        return None
    return _DECODERS[spec.kind](value)


def _crm_values(raw: Mapping[str, Any], specs: Sequence[FieldSpec]) -> dict[str, FieldValue]:
    return {s.salesforce: decode_value(s, value_at(raw, s.salesforce)) for s in specs}


def to_account(raw: Mapping[str, Any], mapping: AccountMapping) -> Account:
    """An Account; a missing revenue reads as 0, attributes keep only set values."""
    attributes = {
        name: text for name in mapping.extra_fields if (text := _text(value_at(raw, name)))
    }
    potential = _number(value_at(raw, mapping.potential_field)) if mapping.potential_field else None
    return Account(
        id=str(raw["Id"]),
        name=_text(value_at(raw, "Name")) or "",
        domains=_domains(raw, mapping.domain_fields),
        revenue=_number(value_at(raw, mapping.revenue_field)) or 0.0,
        revenue_potential=potential,
        owner_email=_text(value_at(raw, "Owner.Email")),
        attributes=attributes,
        crm_values=_crm_values(raw, mapping.crm_fields),
    )


def to_contact(raw: Mapping[str, Any], mapping: ContactMapping) -> Contact | None:
    """A Contact, or None for a contact without an account (it counts for none)."""
    account_id = _text(value_at(raw, "AccountId"))
    if account_id is None:
        return None
    tier = _text(value_at(raw, mapping.tier_field)) if mapping.tier_field else None
    return Contact(
        id=str(raw["Id"]),
        account_id=account_id,
        email=_text(value_at(raw, "Email")),
        name=_text(value_at(raw, "Name")) or "",
        title=_text(value_at(raw, "Title")) or "",
        crm_tier=tier,
        crm_values=_crm_values(raw, mapping.crm_fields),
    )

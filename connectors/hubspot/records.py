"""HubSpot CRM records as plain values, read from HubSpot's JSON in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.hubspot.values import parse_datetime

__all__ = ["AssocRef", "HsRecord", "next_after", "results", "to_record"]


@dataclass(frozen=True, slots=True)
class AssocRef:
    """One associated record as the v3 list call reports it inline."""

    id: str
    type: str


@dataclass(frozen=True, slots=True)
class HsRecord:
    """A CRM object: its id, the requested properties (strings) and inline associations."""

    id: str
    properties: Mapping[str, str | None]
    associations: Mapping[str, tuple[AssocRef, ...]] = field(default_factory=dict)
    updated_at: datetime | None = None
    archived_at: datetime | None = None
    created_at: datetime | None = None

    def prop(self, name: str | None) -> str | None:
        """The property's value, trimmed; None when absent or empty."""
        if name is None:
            return None
        value = self.properties.get(name)
        if value is None:
            return None
        value = str(value).strip()
        return value or None


def to_record(obj: Mapping[str, Any]) -> HsRecord:
    """An ``HsRecord`` from a ``SimplePublicObject(WithAssociations)``."""
    associations = {
        to_type: tuple(
            AssocRef(str(ref["id"]), str(ref.get("type", ""))) for ref in results(collection)
        )
        for to_type, collection in (obj.get("associations") or {}).items()
    }
    return HsRecord(
        id=str(obj["id"]),
        properties=dict(obj.get("properties") or {}),
        associations=associations,
        updated_at=parse_datetime(obj.get("updatedAt")),
        archived_at=parse_datetime(obj.get("archivedAt")),
        created_at=parse_datetime(obj.get("createdAt")),
    )


def results(payload: Mapping[str, Any] | None) -> list[Any]:
    """The ``results`` list of a collection or batch response (empty when absent)."""
    found = (payload or {}).get("results")
    return found if isinstance(found, list) else []


def next_after(payload: Mapping[str, Any]) -> str | None:
    """The ``paging.next.after`` cursor of a list response, if there is a next page."""
    after = ((payload.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after else None

"""HubSpot CRM records as plain values, converted from the SDK's models in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["AssocRef", "HsRecord", "next_after", "to_record"]


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
        value = value.strip()
        return value or None


def to_record(obj: Any) -> HsRecord:
    """An ``HsRecord`` from a SimplePublicObject(WithAssociations) of the SDK."""
    associations: dict[str, tuple[AssocRef, ...]] = {}
    for to_type, collection in (getattr(obj, "associations", None) or {}).items():
        results = getattr(collection, "results", None) or ()
        associations[to_type] = tuple(AssocRef(str(r.id), str(r.type)) for r in results)
    return HsRecord(
        id=str(obj.id),
        properties=dict(obj.properties or {}),
        associations=associations,
        updated_at=obj.updated_at,
        archived_at=getattr(obj, "archived_at", None),
        created_at=getattr(obj, "created_at", None),
    )


def next_after(response: Any) -> str | None:
    """The ``paging.next.after`` cursor of a list response, if there is a next page."""
    paging = getattr(response, "paging", None)
    nxt = getattr(paging, "next", None) if paging is not None else None
    after = getattr(nxt, "after", None) if nxt is not None else None
    return str(after) if after else None

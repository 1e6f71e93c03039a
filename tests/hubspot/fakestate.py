"""The fake portal's records, scripted faults and search semantics."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.hubspot import wire


class BadRequest(Exception):  # noqa: N818  # an HTTP answer, not a programming error
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int
    delay: float = 0.0


@dataclass
class Record:
    id: str
    properties: dict[str, str | None]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None


@dataclass
class Store:
    """Records of one object type, live and archived, kept in id order."""

    live: dict[str, Record] = field(default_factory=dict)
    archived: dict[str, Record] = field(default_factory=dict)
    _order: list[int] | None = None
    _archived_order: list[int] | None = None

    def ordered(self, archived: bool = False) -> list[int]:
        if archived:
            if self._archived_order is None:
                self._archived_order = sorted(int(i) for i in self.archived)
            return self._archived_order
        if self._order is None:
            self._order = sorted(int(i) for i in self.live)
        return self._order

    def changed(self) -> None:
        self._order = self._archived_order = None


# -- search helpers ------------------------------------------------------------------


def comparable(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def holds(record: Record, flt: wire.Filter) -> bool:
    raw = (
        record.id if flt.propertyName == "hs_object_id" else record.properties.get(flt.propertyName)
    )
    if flt.operator == "HAS_PROPERTY":
        return raw not in (None, "")
    if flt.operator == "NOT_HAS_PROPERTY":
        return raw in (None, "")
    if flt.operator in {"IN", "NOT_IN"}:
        inside = str(raw).lower() in {v.lower() for v in flt.values or ()}
        return inside if flt.operator == "IN" else not inside
    if flt.operator in {"EQ", "NEQ"} and comparable(raw) is None and raw is not None:
        same = str(raw).lower() == (flt.value or "").lower()  # text compares case-insensitively
        return same if flt.operator == "EQ" else not same
    value, low = comparable(raw), comparable(flt.value)
    if value is None or low is None:
        return flt.operator == "NEQ" and raw != flt.value
    high = comparable(flt.highValue)
    tests = {
        "EQ": value == low,
        "NEQ": value != low,
        "GT": value > low,
        "GTE": value >= low,
        "LT": value < low,
        "LTE": value <= low,
        "BETWEEN": high is not None and low <= value <= high,
    }
    return tests.get(flt.operator, False)


def matches(record: Record, groups: list[wire.FilterGroup]) -> bool:
    return not groups or any(all(holds(record, f) for f in g.filters) for g in groups)


def sort_key(sorts: list[wire.Sort | str]) -> Callable[[Record], Any]:
    first = sorts[0] if sorts else wire.Sort(propertyName="hs_object_id")
    sort = first if isinstance(first, wire.Sort) else wire.Sort(propertyName=first.lstrip("-"))
    sign = -1 if sort.direction == "DESCENDING" else 1

    def key(record: Record) -> float:
        raw = (
            record.id
            if sort.propertyName == "hs_object_id"
            else record.properties.get(sort.propertyName)
        )
        return sign * (comparable(raw) or 0.0)

    return key

"""Field values between the agent's types and HubSpot's property strings.

HubSpot takes and returns every property value as a string: numbers in plain decimal
notation, booleans ``true``/``false``, datetimes as ISO 8601 (or epoch milliseconds),
multi-select options joined by ``;``; an empty string clears a property.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from agent.core.contract import FieldKind
from agent.core.ports import FieldValue

__all__ = ["format_value", "iso_millis", "parse_datetime", "parse_number", "parse_value"]

_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def format_value(value: FieldValue, kind: FieldKind | None = None) -> str:
    """The string HubSpot stores for ``value``; ``kind`` tells a number given as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _plain_number(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        return iso_millis(value)
    if isinstance(value, tuple):
        return ";".join(value)
    number = parse_number(value) if kind in {"number", "percent", "integer"} else None
    return value if number is None else _plain_number(number)


def parse_value(raw: str | None, kind: FieldKind) -> FieldValue:
    """The agent's value for a property string HubSpot returned (None when empty)."""
    text = (raw or "").strip()
    return _PARSERS.get(kind, _text)(text) if text else None


def parse_number(text: str | None) -> float | None:
    """A float from HubSpot's number string; None when empty or not a finite number."""
    if text is None or not text.strip():
        return None
    try:
        number = float(text.strip().replace(",", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_datetime(text: str | None) -> datetime | None:
    """An aware UTC datetime from ISO 8601 or epoch milliseconds; None when neither."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def iso_millis(value: datetime) -> str:
    """``2026-01-02T03:04:05.678Z``: the form HubSpot itself uses (naive means UTC)."""
    utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _plain_number(value: float) -> str:
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _integer(text: str) -> FieldValue:
    number = parse_number(text)
    return int(number) if number is not None and number.is_integer() else number


def _multi(text: str) -> FieldValue:
    return tuple(sorted(part.strip() for part in text.split(";") if part.strip()))


def _text(text: str) -> FieldValue:
    return text


_PARSERS: Mapping[FieldKind, Callable[[str], FieldValue]] = {
    "number": parse_number,
    "percent": parse_number,
    "integer": _integer,
    "boolean": lambda text: _BOOLS.get(text.lower()),
    "multi": _multi,
    "datetime": parse_datetime,
}

"""Incremental cursors as values, advanced by pure functions.

A cursor is the latest modification time (HubSpot's own clock, ISO 8601 UTC with
milliseconds) of what a read returned. The next read asks for records modified at or
after ``cursor - overlap`` (inclusive, because search results lag behind writes) and
up to the read's start; the new cursor never passes that start.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from connectors.hubspot.values import iso_millis, parse_datetime

__all__ = ["Window", "advance", "format_cursor", "parse_cursor", "to_millis", "window"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Window:
    """An inclusive time range of modification dates to read."""

    __slots__ = ("high", "low")

    def __init__(self, low: datetime, high: datetime) -> None:
        self.low = low
        self.high = high

    def __repr__(self) -> str:
        return f"Window({format_cursor(self.low)} .. {format_cursor(self.high)})"


def parse_cursor(value: str) -> datetime:
    """The time a stored cursor names; ``ValueError`` naming the value when it is not one."""
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a HubSpot cursor (ISO 8601 time expected): {value!r}")
    return parsed


def format_cursor(when: datetime) -> str:
    """The stored form of a cursor: ISO 8601 UTC with milliseconds."""
    return iso_millis(when)


def window(cursor: datetime, started: datetime, overlap: timedelta) -> Window:
    """What an incremental read asks for: ``[cursor - overlap, started]``."""
    low = min(cursor - overlap, started)
    return Window(low, started)


def advance(
    previous: datetime | None, seen: Iterable[datetime | None], started: datetime
) -> datetime:
    """The next cursor: the latest time seen (never earlier than before), capped at the start."""
    latest = max((s for s in seen if s is not None), default=None)
    candidates = [t for t in (previous, latest) if t is not None]
    if not candidates:
        return started
    return min(max(candidates), started)


def to_millis(when: datetime) -> str:
    """Epoch milliseconds, as HubSpot's search filters take dates."""
    return str((when - _EPOCH) // timedelta(milliseconds=1))

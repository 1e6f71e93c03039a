"""Incremental-read cursors as values: the newest ``SystemModstamp`` seen, capped.

A read starts ``overlap`` before the stored cursor (inclusive), so records committed
late or stamped by a clock a little behind ours are read again rather than missed;
reading a record twice is harmless because records are keyed by id. After a
complete read the cursor moves to the newest stamp Salesforce reported, never past
the moment the read started (what changes during a read is read again next time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["advance", "format_cursor", "lower_bound", "parse_stamp"]


def parse_stamp(value: str) -> datetime:
    """A Salesforce datetime (``2024-05-01T12:00:00.000+0000`` or ``...Z``), timezone-aware."""
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_cursor(moment: datetime) -> str:
    """The stored form: UTC with milliseconds and ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lower_bound(cursor: str | None, overlap: timedelta) -> datetime | None:
    """Where an incremental read starts (inclusive), or None for a full read."""
    if cursor is None:
        return None
    start = parse_stamp(cursor) - overlap
    return start.replace(microsecond=0)


def advance(previous: str | None, newest_seen: datetime | None, started_at: datetime) -> str:
    """The cursor after a complete read: newest stamp seen, never past the read's start.

    With nothing seen the cursor stays (or, on a first read of an empty org, starts at
    the read's start).
    """
    candidates = [d for d in (newest_seen, _parsed(previous)) if d is not None]
    newest = max(candidates) if candidates else started_at
    return format_cursor(min(newest, started_at))


def _parsed(cursor: str | None) -> datetime | None:
    return parse_stamp(cursor) if cursor is not None else None

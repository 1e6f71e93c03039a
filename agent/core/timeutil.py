"""Parsing the ``--as-of`` instants people type: ISO 8601, any offset, no zone = UTC."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_instant", "utcnow"]


def utcnow() -> datetime:
    """Now, timezone-aware (the default ``as_of``)."""
    return datetime.now(UTC)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; ``Z`` and any offset accepted, a naive time is UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

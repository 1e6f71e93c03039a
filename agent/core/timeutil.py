"""Parsing the ``--as-of`` instants people type: ISO 8601, any offset, no zone = UTC."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_instant", "pin_now", "utcnow"]

#: Set by ``ax-agent run --once --as-of``: the one pass runs as of that instant.
_PINNED: list[datetime] = []


def utcnow() -> datetime:
    """Now, timezone-aware (the default ``as_of``), or the instant pinned by ``pin_now``."""
    return _PINNED[0] if _PINNED else datetime.now(UTC)


def pin_now(instant: datetime | None) -> None:
    """Make ``utcnow`` answer ``instant`` (None: the real clock again).

    For a single pass replayed at a given time (the demo's pinned date, a test); a
    long-running agent never pins its clock.
    """
    _PINNED[:] = [instant] if instant is not None else []


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; ``Z`` and any offset accepted, a naive time is UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

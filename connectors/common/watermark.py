"""Incremental-read watermarks as values, advanced by pure functions.

A vendor stamps each record with its last modification time. A read asks for every
record stamped at or after ``since`` (inclusive). Records can become visible a little
after the time they carry (a late commit, a search index that lags), so a read that
started at ``started`` is only sure of what is stamped before ``started - overlap``:
the next read starts there. The overlap is read again, but what was already seen in it
is not passed on: ``seen`` keeps the id and stamp of every record read inside the
overlap, and a record read again at the same stamp is skipped by id.

So a quiet source costs one empty page per object once the overlap has passed since
the last change (the agent's own write-back included): the watermark no longer sticks
at the newest stamp, re-reading everything written near it on every cycle.

The stored form is a small JSON object; an older plain timestamp (the newest stamp
seen) still reads, as a watermark starting ``overlap`` before it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["MAX_SEEN", "Watermark", "advance", "already_seen", "decode", "encode", "stamp_key"]

#: Ids kept for de-duplication; past this only the newest are kept (the rest may be
#: passed on once more, which is harmless: records are keyed by id downstream).
MAX_SEEN = 20_000


@dataclass(frozen=True, slots=True)
class Watermark:
    """Where the next read starts (inclusive) and what it has already seen there."""

    since: datetime
    seen: Mapping[str, str] = field(default_factory=dict)


def stamp_key(moment: datetime) -> str:
    """A modification time as compared and stored: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(mark: Watermark) -> str:
    """The stored form of a watermark."""
    body = {"since": stamp_key(mark.since), "seen": dict(sorted(mark.seen.items()))}
    return json.dumps(body, separators=(",", ":"))


def decode(
    value: str | None, overlap: timedelta, parse_time: Callable[[str], datetime]
) -> Watermark | None:
    """A stored watermark (None for none); ``ValueError`` naming a value that is not one."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.startswith("{"):  # an older cursor: the newest stamp seen
        return Watermark(since=parse_time(text) - overlap)
    try:
        body = json.loads(text)
        since = parse_time(str(body["since"]))
        seen = {str(k): str(v) for k, v in dict(body.get("seen") or {}).items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a cursor this version can read: {value[:80]!r}") from exc
    return Watermark(since=since, seen=seen)


def already_seen(mark: Watermark | None, record_id: str, stamp: datetime | None) -> bool:
    """True when this record was read before at this very modification time."""
    if mark is None or stamp is None:
        return False
    return mark.seen.get(record_id) == stamp_key(stamp)


def advance(
    previous: Watermark | None,
    read: Iterable[tuple[str, datetime | None]],
    started: datetime,
    overlap: timedelta,
    *,
    limit: int = MAX_SEEN,
) -> Watermark:
    """The watermark after a complete read that began at ``started`` (the vendor's clock).

    It never moves back; ``seen`` holds, for each record stamped at or after the new
    ``since``, the latest stamp read (``read`` in reading order, after ``previous``).
    A record stamped in the very second the read began (or later) is not marked seen:
    it may change again within that second (Salesforce stamps whole seconds) and must
    then be passed on again.
    """
    since = started - overlap
    if previous is not None and previous.since > since:
        since = previous.since
    floor = stamp_key(since)
    settled = stamp_key(started.replace(microsecond=0))
    seen: dict[str, str] = {}
    if previous is not None:
        seen.update((k, v) for k, v in previous.seen.items() if v >= floor)
    for record_id, stamp in read:
        if stamp is not None and floor <= (key := stamp_key(stamp)) < settled:
            seen[record_id] = max(key, seen.get(record_id, key))
    if len(seen) > limit:
        newest = sorted(seen.items(), key=lambda item: item[1], reverse=True)[:limit]
        seen = dict(newest)
    return Watermark(since=since, seen=seen)

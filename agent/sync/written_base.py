"""What the last write-back left settled, so the next one compares only what may have moved.

A write-back that ran to its end leaves every record it planned settled: its values
were written (the confirmed writes now stand in for the CRM's) or already equal to the
CRM's, except the records whose write failed. Planning such a record again finds
nothing to write until one of its inputs moves. The next write-back of the same
process therefore compares only the records for which one of them may have moved:

- its row in the document is another object than the one planned last time. The rows
  are frozen: an account the figures did not recompute keeps its very row, and its
  contacts keep theirs;
- its values from the figure history (accounts) or its coverage-plan flag (contacts)
  differ from last time;
- a CRM sync changed it since (what the CRM holds may differ now: an admin's edit; a
  record read again the same, or with only the agent's own values back, is no change);
- it is new, or its last write failed.

Anything else that moves the mirror or the write record forgets the base, and the next
write-back compares every record: a CRM sync that failed part-way, another replica
having led, a change the state does not name, other field mappings, a change too large
to list. The base lives in memory only; a new process compares every record once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.document import AccountMetrics, ContactFigures

__all__ = ["ROW_ID", "DocRow", "WrittenBase", "WrittenOver"]

DocRow = AccountMetrics | ContactFigures

#: More records changed by syncs than this (per object) since the last write-back: that
#: object's records are all compared rather than listed.
_LISTED_AT_MOST = 200_000


@dataclass(slots=True)
class WrittenOver:
    """What one write-back plans over, kept to settle it: per object, the document's
    rows in id order (one per id); the accounts' history values and the coverage
    plan's contacts (None: not written)."""

    specs: tuple[FieldSpec, ...]
    extra: Mapping[str, Mapping[str, object]]
    survey_next: frozenset[str] | None
    rows: dict[ObjectKind, list[DocRow]] = field(default_factory=dict)


@dataclass(slots=True)
class _Base:
    over: WrittenOver
    #: Per object, the records whose write failed (they stay due).
    failed: dict[ObjectKind, set[str]]


class WrittenBase:
    """The last settled write-back of this process, and the records changed since."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._base: _Base | None = None
        #: Ids changed by CRM syncs since the base was taken (None: too many to list).
        self._moved: dict[ObjectKind, set[str] | None] = {}

    def forget(self) -> None:
        """Something moved that is not named: the next write-back compares every record."""
        with self._lock:
            self._base = None
            self._moved = {}

    def changed(self, obj: ObjectKind, ids: Iterable[str]) -> None:
        """A CRM sync changed these records (told before they commit)."""
        with self._lock:
            seen = self._moved.setdefault(obj, set())
            if seen is None:
                return
            seen.update(ids)
            if len(seen) > _LISTED_AT_MOST:
                self._moved[obj] = None

    def take(self) -> Callable[[ObjectKind, Sequence[DocRow], WrittenOver], set[str] | None]:
        """Start a write-back: the base is taken (it comes back only through
        ``settle``, so a write-back that fails part-way leaves none) and the changes are
        counted afresh. Returns how to find the ids it must compare: ``due(obj, rows,
        over)`` with ``rows`` in id order, one per id (None: every record)."""
        with self._lock:
            base, moved = self._base, self._moved
            self._base, self._moved = None, {}

        def due(obj: ObjectKind, rows: Sequence[DocRow], over: WrittenOver) -> set[str] | None:
            if base is None or base.over.specs != over.specs or obj not in base.over.rows:
                return None
            seen = moved.get(obj, set())
            if seen is None:
                return None
            found = set(seen) | base.failed.get(obj, set())
            _moved_rows(base.over.rows[obj], rows, ROW_ID[obj], found)
            if obj == "account":
                old = base.over.extra
                found.update(rid for rid, values in over.extra.items() if old.get(rid) != values)
            elif over.survey_next != base.over.survey_next:
                if over.survey_next is None or base.over.survey_next is None:
                    return None
                found.update(over.survey_next ^ base.over.survey_next)
            return found

        return due

    def settle(self, over: WrittenOver, failed: Mapping[ObjectKind, Iterable[str]]) -> None:
        """The write-back over ``over`` ran to its end; ``failed``: the records whose
        write the CRM refused (compared again next time)."""
        with self._lock:
            # the changes during the write-back stay counted (``take`` started them afresh)
            self._base = _Base(over, {obj: set(ids) for obj, ids in failed.items()})


#: How a document row of each object names its CRM record (read at C speed).
ROW_ID: dict[ObjectKind, Callable[[DocRow], str]] = {
    "account": attrgetter("id"),
    "contact": attrgetter("contact_id"),
}


def _moved_rows(
    old: Sequence[DocRow], new: Sequence[DocRow], key: Callable[[DocRow], str], into: set[str]
) -> None:
    """Adds to ``into`` the id of every row of ``new`` that is not the very row of
    ``old`` with its id (both in id order, one per id)."""
    at, end = 0, len(old)
    for row in new:
        rid = key(row)
        while at < end and key(old[at]) < rid:
            at += 1
        if at >= end or old[at] is not row:
            into.add(rid)

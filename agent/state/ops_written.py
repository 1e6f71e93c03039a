"""Write-back bookkeeping: what the CRM confirmed per record and field, and what failed.

``written_values`` lets the planner skip a field whose value it already wrote (the CRM
may not be re-read between cycles): one row per record, each field with its value and
its own write time; ``write_failures`` keeps each record's last error
and how many attempts in a row failed, so operators see stuck records and the next
cycle retries them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select

from agent.core.batching import chunked
from agent.core.compute import without_gc
from agent.core.contract import ObjectKind
from agent.core.ports import FieldUpdate, FieldValue, WriteOutcome
from agent.core.redaction import redact
from agent.state import schema
from agent.state.codec import JsonValue, to_json_value, written_stamp
from agent.state.dialect import bound_value, bulk_write_bound, one_of, plain_rows, upsert
from agent.state.jsontext import dumps
from agent.state.ops_base import BATCH_ROWS, OpsBase
from agent.state.records import WriteFailure, WrittenSettlement

__all__ = ["WrittenOps"]


def _instant(value: object) -> JsonValue:
    """The encoder's hook for what JSON has no type for: ``to_json_value``'s instants
    (it encodes tuples as lists itself)."""
    if isinstance(value, datetime):
        return to_json_value(value)
    raise TypeError(f"a written value cannot be {type(value).__name__}")


class WrittenOps(OpsBase):
    """The written_values and write_failures tables."""

    def written_values(
        self, crm: str, object: ObjectKind, ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, JsonValue]]:
        """Last written value per record and field (all records, or only ``ids``)."""
        c = schema.written_values.c
        base = select(c.record_id, c.fields).where(c.crm == crm, c.object == object)
        found: dict[str, dict[str, JsonValue]] = {}
        for stmt in _by_ids(base, c.record_id, ids):
            for rid, fields in plain_rows(self._conn, stmt):
                found[rid] = {name: pair[0] for name, pair in fields.items()}
        return found

    def written_since_read(
        self, crm: str, object: ObjectKind, ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, JsonValue]]:
        """Confirmed writes the mirror has not seen yet: written after the record was read
        (of every record, or only of ``ids``).

        What the CRM holds is the truth; a confirmed write only stands in for it until
        the next read of that record brings the CRM's own value (an admin's edit too).
        Each field keeps its own write time: a record read after one write and written
        again since brings only the later write's fields.
        """
        w = schema.written_values.c
        r = schema.crm_records.c
        stmt = (
            select(w.record_id, w.fields, r.seen_at)
            .select_from(schema.written_with_records(outer=True))
            .where(w.crm == crm, w.object == object)
            # the record's newest write: the records read since are not even opened
            .where(or_(r.seen_at.is_(None), w.written_at > r.seen_at))
        )
        found: dict[str, dict[str, JsonValue]] = {}
        # a full read stamps every record with its one instant: each distinct instant is
        # turned into a stamp once (per record, it was a fifth of this read at 500,000)
        stamps: dict[datetime | None, str] = {None: ""}
        for part in _by_ids(stmt, w.record_id, ids):
            for rid, fields, seen_at in plain_rows(self._conn, part):
                read = stamps.get(seen_at)
                if read is None:
                    read = stamps[seen_at] = written_stamp(seen_at)
                newer = {name: value for name, (value, at) in fields.items() if at > read}
                if newer:
                    found[rid] = newer
        return found

    def record_written(self, crm: str, object: ObjectKind, updates: Sequence[FieldUpdate]) -> int:
        """Remember values the CRM accepted (as JSON); returns the number of fields.

        One row per record; a field written before and not in ``updates`` keeps its
        value and write time. Claimed against the running agent's leadership epoch,
        like a cursor commit.
        """
        self._hold(f"the write record of {len(updates)} {object}(s)")
        table = schema.written_values
        now = self._now()
        stamp = written_stamp(now)
        at = bound_value(self._conn, table.c.written_at, now)
        count = 0
        # a row's JSON is made BATCH_ROWS records at a time (550,000 at once in a large
        # first write-back would hold a list per field of each)
        for batch in chunked(_merged(updates), BATCH_ROWS):
            with without_gc():  # a list per field: acyclic, and many in a large process
                values = [
                    (crm, object, rid, dumps({n: [v, stamp] for n, v in row.items()}, _instant), at)
                    for rid, row in batch
                ]
            count += sum(len(fields) for _rid, fields in batch)
            bulk_write_bound(
                self._conn, table, values, merge_json=["fields"], latest=["written_at"]
            )
        return count

    def record_failures(
        self, crm: str, object: ObjectKind, outcomes: Sequence[WriteOutcome]
    ) -> int:
        """Count one more failed attempt for each failed outcome; returns how many."""
        now = self._now()
        rows = {
            o.record_id: {
                "crm": crm,
                "object": object,
                "record_id": o.record_id,
                "error_code": o.error_code,
                "message": redact(o.message) if o.message else o.message,
                "attempts": 1,
                "last_at": now,
            }
            for o in outcomes
            if not o.ok
        }
        table = schema.write_failures
        stmt = upsert(
            table,
            self._dialect,
            ["error_code", "message", "last_at"],
            {"attempts": table.c.attempts + 1},
        )
        for batch in chunked(rows.values(), BATCH_ROWS):
            self._conn.execute(stmt, batch)
        return len(rows)

    def clear_failures(self, crm: str, object: ObjectKind, ids: Iterable[str]) -> int:
        """Forget the failures of records written successfully; returns how many.

        With no failure of this CRM and object stored (the usual case) there is nothing
        to delete: a write-back that confirms 550,000 records otherwise deletes by 550
        lists of a thousand ids, each compiled into its statement, to find none (about
        1 s of a first write-back). With failures stored, each piece of ids is deleted
        as before: a check per confirmed piece stays one indexed row, however many
        records failed."""
        c = schema.write_failures.c
        mine = (c.crm == crm, c.object == object)
        if self._conn.execute(select(c.record_id).where(*mine).limit(1)).first() is None:
            return 0
        cleared = 0
        for batch in chunked(ids, BATCH_ROWS):
            stmt = delete(schema.write_failures).where(*mine, c.record_id.in_(batch))
            cleared += self._conn.execute(stmt).rowcount
        return cleared

    def failed_records(self, crm: str, object: ObjectKind) -> dict[str, WriteFailure]:
        """Records whose last write failed: error code, message and attempts in a row."""
        c = schema.write_failures.c
        stmt = select(c.record_id, c.error_code, c.message, c.attempts).where(
            c.crm == crm, c.object == object
        )
        return {
            row.record_id: WriteFailure(row.error_code, row.message, row.attempts)
            for row in self._conn.execute(stmt)
        }

    # -- what the last write-back settled --------------------------------------------

    def written_settlement(self, crm: str, object: ObjectKind) -> WrittenSettlement | None:
        """The last settled write-back of ``object`` (None: none yet)."""
        h = schema.written_settled_heads.c
        head = self._conn.execute(
            select(h.specs, h.read_from, h.written_to).where(h.crm == crm, h.object == object)
        ).first()
        if head is None:
            return None
        return WrittenSettlement(head.specs, head.read_from, head.written_to)

    def settled_digests(self, crm: str, object: ObjectKind, ids: Sequence[str]) -> dict[str, str]:
        """The stored digests of the records among ``ids`` (those without one are left out)."""
        c = schema.written_settled.c
        found: dict[str, str] = {}
        for batch in chunked(ids, BATCH_ROWS):
            stmt = select(c.record_id, c.digest).where(
                c.crm == crm, c.object == object, one_of(c.record_id, batch, self._dialect)
            )
            found.update(plain_rows(self._conn, stmt))
        return found

    def moved_since_settled(
        self, crm: str, object: ObjectKind, read_from: datetime, written_to: datetime
    ) -> set[str]:
        """Records a sync changed after ``read_from`` (what the CRM holds may differ), or
        the agent wrote after ``written_to`` (a record whose write failed has no digest
        stored: it is compared again as one whose values moved)."""
        r, w = schema.crm_records.c, schema.written_values.c
        queries = (
            select(r.record_id).where(r.crm == crm, r.object == object, r.changed_at > read_from),
            select(w.record_id).where(w.crm == crm, w.object == object, w.written_at > written_to),
        )
        moved: set[str] = set()
        for stmt in queries:
            moved.update(self._conn.execute(stmt).scalars())
        return moved

    def clear_settled(self, crm: str, object: ObjectKind) -> None:
        """Every stored digest of ``object`` goes (a settlement of every record follows)."""
        self._hold(f"the settled write-back of {crm}/{object}")
        c = schema.written_settled.c
        self._conn.execute(delete(schema.written_settled).where(c.crm == crm, c.object == object))

    def store_settled(
        self, crm: str, object: ObjectKind, digests: Sequence[tuple[str, str]]
    ) -> None:
        """Store records' digests ``(record id, digest)`` of a write-back that ran to its end."""
        self._hold(f"the settled write-back of {crm}/{object}")
        # plain text columns: bound as they are, without a conversion per value
        rows = [(crm, object, rid, digest) for rid, digest in digests]
        for batch in chunked(rows, BATCH_ROWS):
            bulk_write_bound(self._conn, schema.written_settled, batch, update=["digest"])

    def settle_head(
        self,
        crm: str,
        object: ObjectKind,
        head: WrittenSettlement,
        unsettled: Iterable[str] = (),
    ) -> None:
        """The settling write-back's head; ``unsettled``: the records whose write failed
        (their digests go: they are compared again). Claimed against the leadership
        epoch, as the write record is."""
        self._hold(f"the settled write-back of {crm}/{object}")
        c = schema.written_settled.c
        for ids in chunked(unsettled, BATCH_ROWS):
            self._conn.execute(
                delete(schema.written_settled).where(
                    c.crm == crm, c.object == object, c.record_id.in_(ids)
                )
            )
        row = {
            "crm": crm,
            "object": object,
            "specs": head.specs,
            "read_from": head.read_from,
            "written_to": head.written_to,
        }
        stmt = upsert(
            schema.written_settled_heads, self._dialect, ["specs", "read_from", "written_to"]
        )
        self._conn.execute(stmt, [row])


def _merged(updates: Sequence[FieldUpdate]) -> Iterator[tuple[str, Mapping[str, FieldValue]]]:
    """Each record's values once (a record in several updates: their fields merged, the
    later value winning; one statement may not touch a row twice); none without fields."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for u in updates:
        if u.record_id in seen:
            repeated.add(u.record_id)
        seen.add(u.record_id)
    del seen
    merged: dict[str, dict[str, FieldValue]] = {}
    for u in updates:
        if u.record_id in repeated:
            merged.setdefault(u.record_id, {}).update(u.values)
        elif u.values:
            yield u.record_id, u.values
    yield from ((rid, fields) for rid, fields in merged.items() if fields)


def _by_ids(base: Any, column: Any, ids: Iterable[str] | None) -> Iterable[Any]:
    if ids is None:
        yield base
        return
    for batch in chunked(ids, BATCH_ROWS):
        yield base.where(column.in_(batch))

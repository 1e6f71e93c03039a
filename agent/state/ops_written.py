"""Write-back bookkeeping: what the CRM confirmed per record and field, and what failed.

``written_values`` lets the planner skip a field whose value it already wrote (the CRM
may not be re-read between cycles); ``write_failures`` keeps each record's last error
and how many attempts in a row failed, so operators see stuck records and the next
cycle retries them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, or_, select

from agent.core.batching import chunked
from agent.core.contract import ObjectKind
from agent.core.ports import FieldUpdate, WriteOutcome
from agent.core.redaction import redact
from agent.state import schema
from agent.state.codec import JsonValue, to_json_value
from agent.state.dialect import bulk_write, upsert
from agent.state.ops_base import BATCH_ROWS, OpsBase
from agent.state.records import WriteFailure

__all__ = ["WrittenOps"]


class WrittenOps(OpsBase):
    """The written_values and write_failures tables."""

    def written_values(
        self, crm: str, object: ObjectKind, ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, JsonValue]]:
        """Last written value per record and field (all records, or only ``ids``)."""
        c = schema.written_values.c
        base = select(c.record_id, c.field, c.value).where(c.crm == crm, c.object == object)
        found: dict[str, dict[str, JsonValue]] = {}
        for stmt in _by_ids(base, c.record_id, ids):
            for row in self._conn.execute(stmt):
                found.setdefault(row.record_id, {})[row.field] = row.value
        return found

    def written_since_read(self, crm: str, object: ObjectKind) -> dict[str, dict[str, JsonValue]]:
        """Confirmed writes the mirror has not seen yet: written after the record was read.

        What the CRM holds is the truth; a confirmed write only stands in for it until
        the next read of that record brings the CRM's own value (an admin's edit too).
        """
        w = schema.written_values.c
        r = schema.crm_records.c
        joined = schema.written_values.outerjoin(
            schema.crm_records,
            and_(r.crm == w.crm, r.object == w.object, r.record_id == w.record_id),
        )
        stmt = (
            select(w.record_id, w.field, w.value)
            .select_from(joined)
            .where(w.crm == crm, w.object == object)
            .where(or_(r.seen_at.is_(None), w.written_at > r.seen_at))
        )
        found: dict[str, dict[str, JsonValue]] = {}
        for row in self._conn.execute(stmt):
            found.setdefault(row.record_id, {})[row.field] = row.value
        return found

    def record_written(self, crm: str, object: ObjectKind, updates: Sequence[FieldUpdate]) -> int:
        """Remember values the CRM accepted (as JSON); returns the number of fields.

        Claimed against the running agent's leadership epoch, like a cursor commit.
        """
        self._hold(f"the write record of {len(updates)} {object}(s)")
        now = self._now()
        rows = {
            (u.record_id, name): {
                "crm": crm,
                "object": object,
                "record_id": u.record_id,
                "field": name,
                "value": to_json_value(value),
                "written_at": now,
            }
            for u in updates
            for name, value in u.values.items()
        }
        for batch in chunked(rows.values(), BATCH_ROWS):
            bulk_write(self._conn, schema.written_values, batch, ["value", "written_at"])
        return len(rows)

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
        """Forget the failures of records written successfully; returns how many."""
        c = schema.write_failures.c
        cleared = 0
        for batch in chunked(ids, BATCH_ROWS):
            stmt = delete(schema.write_failures).where(
                c.crm == crm, c.object == object, c.record_id.in_(batch)
            )
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


def _by_ids(base: Any, column: Any, ids: Iterable[str] | None) -> Iterable[Any]:
    if ids is None:
        yield base
        return
    for batch in chunked(ids, BATCH_ROWS):
        yield base.where(column.in_(batch))

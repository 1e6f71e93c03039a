"""The cycle log, source cursors and ingested files: small bookkeeping tables."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from sqlalchemy import RowMapping, delete, insert, or_, select, update

from agent.core.redaction import redact
from agent.state import schema
from agent.state.dialect import insert_ignore, upsert
from agent.state.ops_base import OpsBase
from agent.state.records import CycleRecord, CycleStatus, FileRecord

__all__ = ["LogOps"]

_FINAL: frozenset[str] = frozenset({"ok", "failed"})


class LogOps(OpsBase):
    """Cycles, cursors and ingested files."""

    # -- cycles ---------------------------------------------------------------

    def start_cycle(self, job: str) -> int:
        """Log that ``job`` started now; returns the cycle id to finish it with."""
        fence = self._fence
        stmt = insert(schema.cycles).values(
            job=job,
            started_at=self._now(),
            status="running",
            counts={},
            replica=fence.replica if fence is not None else None,
            epoch=fence.epoch if fence is not None else None,
        )
        key = self._conn.execute(stmt).inserted_primary_key
        if key is None:  # pragma: no cover - both dialects return the id
            raise RuntimeError("the database returned no cycle id")
        return int(key[0])

    def finish_cycle(
        self,
        cycle_id: int,
        status: CycleStatus,
        counts: Mapping[str, int],
        error: str | None = None,
    ) -> bool:
        """Record how cycle ``cycle_id`` ended (``ok`` or ``failed``), its counts and error.

        Registered secrets are masked in ``error`` before it is stored. Only a run
        still ``running`` is finished: once a newer leader closed it (its agent was
        presumed dead), an older epoch never overwrites that; returns False then.
        """
        if status not in _FINAL:
            raise ValueError(f"a cycle finishes ok or failed, not {status!r}")
        stmt = (
            update(schema.cycles)
            .where(schema.cycles.c.id == cycle_id, schema.cycles.c.status == "running")
            .values(
                finished_at=self._now(),
                status=status,
                counts={str(k): int(v) for k, v in counts.items()},
                error=redact(error) if error else error,
            )
        )
        if self._conn.execute(stmt).rowcount == 1:
            return True
        found = self._conn.execute(
            select(schema.cycles.c.id).where(schema.cycles.c.id == cycle_id)
        ).first()
        if found is None:
            raise KeyError(f"no cycle with id {cycle_id}")
        return False

    def abandon_running_cycles(self, reason: str, before_epoch: int | None = None) -> int:
        """Mark every cycle still ``running`` as failed with ``reason``; returns how many.

        Only a new leader calls this: a run still marked running then belongs to an
        agent that died (killed, crashed, host lost) or was fenced off before it could
        finish it. With ``before_epoch``, only runs of older epochs are closed.
        """
        c = schema.cycles.c
        stmt = (
            update(schema.cycles)
            .where(c.status == "running")
            .values(finished_at=self._now(), status="failed", error=redact(reason))
        )
        if before_epoch is not None:
            stmt = stmt.where(or_(c.epoch.is_(None), c.epoch < before_epoch))
        return int(self._conn.execute(stmt).rowcount)

    def prune_cycles(self, before: datetime) -> int:
        """Forget finished cycles that started before ``before``; returns how many.

        The log is for operators (what ran, what failed lately); a job every minute
        would otherwise grow it without end. Running cycles are kept whatever their age.
        """
        c = schema.cycles.c
        stmt = delete(schema.cycles).where(c.started_at < before, c.status != "running")
        return int(self._conn.execute(stmt).rowcount)

    def recent_cycles(self, limit: int = 20, job: str | None = None) -> list[CycleRecord]:
        """The latest cycles, newest first (of one job when ``job`` is given)."""
        stmt = select(schema.cycles).order_by(schema.cycles.c.id.desc()).limit(limit)
        if job is not None:
            stmt = stmt.where(schema.cycles.c.job == job)
        return [_cycle(row._mapping) for row in self._conn.execute(stmt)]

    def last_cycle(self, job: str) -> CycleRecord | None:
        """The latest cycle of ``job``, running or finished; None if it never ran."""
        found = self.recent_cycles(1, job=job)
        return found[0] if found else None

    # -- cursors --------------------------------------------------------------

    def get_cursor(self, source: str, stream: str) -> str | None:
        """Where ``source``'s ``stream`` resumes; None before its first full read."""
        c = schema.cursors.c
        stmt = select(c.value).where(c.source == source, c.stream == stream)
        return self._conn.execute(stmt).scalar_one_or_none()

    def set_cursor(self, source: str, stream: str, value: str) -> None:
        """Move the cursor; commit it in the same transaction as the data it covers.

        On the running agent the commit is claimed against its leadership epoch: a
        superseded leader's transaction fails (``FencedError``) and commits nothing.
        """
        self._hold(f"the cursor commit of {source}/{stream}")
        stmt = upsert(schema.cursors, self._dialect, ["value", "updated_at"])
        row = {"source": source, "stream": stream, "value": value, "updated_at": self._now()}
        self._conn.execute(stmt, row)

    def clear_cursor(self, source: str, stream: str) -> None:
        """Forget a cursor, so the next read of that stream is a full read."""
        c = schema.cursors.c
        self._conn.execute(schema.cursors.delete().where(c.source == source, c.stream == stream))

    def all_cursors(self) -> dict[tuple[str, str], str]:
        """Every cursor by (source, stream)."""
        c = schema.cursors.c
        rows = self._conn.execute(select(c.source, c.stream, c.value))
        return {(row.source, row.stream): row.value for row in rows}

    # -- ingested files -------------------------------------------------------

    def file_seen(self, content_hash: str) -> bool:
        """Whether a file with this content was ingested already."""
        c = schema.ingested_files.c
        stmt = select(c.content_hash).where(c.content_hash == content_hash)
        return self._conn.execute(stmt).first() is not None

    def mark_file(self, content_hash: str, name: str, accepted: int, rejected: int) -> bool:
        """Remember an ingested file; False (and nothing changed) if it was known already."""
        row = {
            "content_hash": content_hash,
            "name": name,
            "processed_at": self._now(),
            "accepted": accepted,
            "rejected": rejected,
        }
        table = schema.ingested_files
        stmt = insert_ignore(table, self._dialect).returning(table.c.content_hash)
        return self._conn.execute(stmt, row).first() is not None

    def get_file(self, content_hash: str) -> FileRecord | None:
        """What was recorded when the file with this content was ingested."""
        c = schema.ingested_files.c
        row = self._conn.execute(
            select(schema.ingested_files).where(c.content_hash == content_hash)
        ).first()
        return None if row is None else FileRecord(**row._mapping)


def _cycle(row: RowMapping) -> CycleRecord:
    return CycleRecord(
        id=row["id"],
        job=row["job"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=cast(CycleStatus, row["status"]),
        counts=dict(row["counts"] or {}),
        error=row["error"],
        replica=row.get("replica"),
        epoch=row.get("epoch"),
    )

"""The input version and each CRM's settled cycle (``agent.sync.settled`` decides with them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from agent.state import schema
from agent.state.ops_base import OpsBase

__all__ = ["Settled", "SettledOps"]


@dataclass(frozen=True, slots=True)
class Settled:
    """The last whole cycle of a CRM that changed nothing."""

    fingerprint: str
    as_of: datetime
    #: The first instant at which the same inputs can give another cycle (None: never).
    horizon: datetime | None
    portfolio: dict[str, Any]


class SettledOps(OpsBase):
    """The input_versions and settled_cycles tables."""

    def input_version(self) -> int:
        """Moves with every committed write to a versioned table (never goes back)."""
        c = schema.input_versions.c
        value = self._conn.execute(select(c.version).where(c.id == 1)).scalar()
        return int(value or 0)

    def settled(self, crm: str) -> Settled | None:
        c = schema.settled_cycles.c
        row = self._conn.execute(
            select(c.fingerprint, c.as_of, c.horizon, c.portfolio).where(c.crm == crm)
        ).first()
        if row is None:
            return None
        return Settled(row.fingerprint, row.as_of, row.horizon, dict(row.portfolio))

    def set_settled(self, crm: str, settled: Settled | None) -> None:
        """Record ``crm``'s settled cycle (None: forget it)."""
        table = schema.settled_cycles
        self._conn.execute(delete(table).where(table.c.crm == crm))
        if settled is not None:
            self._conn.execute(
                insert(table).values(
                    crm=crm,
                    fingerprint=settled.fingerprint,
                    as_of=settled.as_of,
                    horizon=settled.horizon,
                    portfolio=dict(settled.portfolio),
                    settled_at=self._now(),
                )
            )

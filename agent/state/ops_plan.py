"""The coverage plan: its contacts and its headline, replaced whole by each plan run.

Kept in the state rather than in memory so that every replica, and a restarted agent,
writes ``survey_next`` from the same plan instead of clearing it until the next run;
the digest and the rules read the headline (how many contacts, which coverage).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from agent.core.batching import chunked
from agent.state import schema
from agent.state.dialect import bulk_write
from agent.state.ops_base import BATCH_ROWS, OpsBase

__all__ = ["PlanOps"]


class PlanOps(OpsBase):
    """The survey_plan and survey_plans tables."""

    def replace_survey_plan(
        self,
        crm: str,
        rows: Iterable[tuple[str, str, str]],
        as_of: datetime,
        summary: Mapping[str, Any],
    ) -> int:
        """Replace ``crm``'s plan with ``(contact_id, account_id, kind)`` rows; their count."""
        now = self._now()
        self._conn.execute(delete(schema.survey_plan).where(schema.survey_plan.c.crm == crm))
        self._conn.execute(delete(schema.survey_plans).where(schema.survey_plans.c.crm == crm))
        self._conn.execute(
            insert(schema.survey_plans).values(
                crm=crm, as_of=as_of, planned_at=now, summary=dict(summary)
            )
        )
        stored = 0
        for batch in chunked(rows, BATCH_ROWS):
            values = [
                {
                    "crm": crm,
                    "contact_id": contact_id,
                    "account_id": account_id,
                    "kind": kind,
                    "planned_at": now,
                    "as_of": as_of,
                }
                for contact_id, account_id, kind in batch
            ]
            bulk_write(self._conn, schema.survey_plan, values)
            stored += len(values)
        return stored

    def survey_plan_ids(self, crm: str) -> set[str]:
        """The contacts ``crm``'s last plan asks to survey."""
        c = schema.survey_plan.c
        return set(self._conn.execute(select(c.contact_id).where(c.crm == crm)).scalars())

    def survey_plan_summary(self, crm: str) -> dict[str, Any] | None:
        """The last plan's headline (``None`` before the first plan run)."""
        c = schema.survey_plans.c
        row = self._conn.execute(select(c.summary).where(c.crm == crm)).first()
        return dict(row.summary) if row is not None else None

"""Planned tasks and stored detractor responses for the connector task tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.core.models import Response
from agent.state.store import StateStore
from agent.tasks.plan import PlannedTask

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def planned(
    n: int,
    *,
    owner: str | None = "owner1@vendor.example",
    fallback: str | None = "cx-lead@vendor.example",
    account: str = "001000000000001AAA",
    contact: str | None = "003000000000001AAA",
    prefix: str = "R",
) -> list[PlannedTask]:
    """``n`` detractor callbacks, keyed like the shipped rule's tasks."""
    return [
        PlannedTask(
            key=f"new-detractor:survey/{prefix}{i}",
            rule_id="new-detractor",
            subject=f"survey/{prefix}{i}",
            account_id=account,
            contact_id=contact,
            response_source="survey",
            response_id=f"{prefix}{i}",
            owner_email=owner,
            fallback_email=fallback,
            title=f"Call back contact {i} (score 3, Support) within 48 h",
            body="Dana scored 3. Call back, listen, and mark this task completed.",
            due_at=NOW + timedelta(hours=48),
            priority="high",
            created_at=NOW,
        )
        for i in range(n)
    ]


def store_responses(store: StateStore, ids: list[str]) -> None:
    """The detractor answers the tasks are about (so a completion can close their loop)."""
    with store.transaction() as tx:
        tx.add_responses(
            [
                Response(
                    response_id=rid,
                    email=f"{rid.lower()}@acme.example",
                    score=3,
                    submitted_at=NOW,
                    source="survey",
                )
                for rid in ids
            ]
        )


def loop_closed_at(store: StateStore, response_id: str) -> datetime | None:
    from sqlalchemy import select

    from agent.state.schema import responses

    with store.engine.connect() as conn:
        value = conn.execute(
            select(responses.c.loop_closed_at).where(responses.c.response_id == response_id)
        ).scalar()
    return value.astimezone(UTC) if value is not None else None

"""Small builders for the core engine's tests: terse accounts, contacts and responses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.core.models import Account, Contact, Response

AS_OF = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    """A moment ``days`` (of 86,400 s) before AS_OF."""
    return AS_OF - timedelta(days=days)


def account(
    account_id: str,
    revenue: float = 0.0,
    *,
    domains: tuple[str, ...] = (),
    potential: float | None = None,
    name: str | None = None,
) -> Account:
    return Account(
        id=account_id,
        name=name or f"Account {account_id}",
        domains=domains,
        revenue=revenue,
        revenue_potential=potential,
    )


def contact(
    contact_id: str,
    account_id: str,
    email: str | None = None,
    *,
    title: str = "",
    tier: str | None = None,
) -> Contact:
    return Contact(id=contact_id, account_id=account_id, email=email, title=title, crm_tier=tier)


def response(
    response_id: str,
    email: str | None,
    score: int,
    *,
    at: datetime | None = None,
    driver: str | None = None,
    hint: str | None = None,
    closed: datetime | None = None,
    source: str = "test",
) -> Response:
    return Response(
        response_id=response_id,
        email=email,
        score=score,
        submitted_at=at or days_ago(1),
        driver=driver,
        account_hint=hint,
        loop_closed_at=closed,
        source=source,
    )

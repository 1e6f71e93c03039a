"""Portfolio figures of DOMAIN.md: sums over the per-account figures, and their ratios."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from agent.core.document import AccountMetrics, PortfolioMetrics
from agent.core.metrics.account import nps, nps_strict
from agent.core.metrics.thresholds import ratio
from agent.core.models import TIERS

__all__ = [
    "account_coverage",
    "closed_in_sla",
    "closed_loop_rate",
    "portfolio_metrics",
    "response_rate",
    "revenue_coverage",
    "revenue_weighted_nps",
]


def account_coverage(accounts_with_feedback: int, accounts: int) -> float | None:
    """The share of accounts with at least one counted respondent."""
    return ratio(accounts_with_feedback, accounts)


def revenue_coverage(covered_revenue: float, total_revenue: float) -> float | None:
    """The share of revenue held by accounts with feedback."""
    return ratio(covered_revenue, total_revenue)


def response_rate(responded_contacts: int, contacts: int) -> float | None:
    """The share of contacts (with an email) who answered."""
    return ratio(responded_contacts, contacts)


def revenue_weighted_nps(accounts: Iterable[tuple[float, float | None]]) -> float | None:
    """``Σ revenue·nps / Σ revenue`` over (revenue, nps) pairs whose nps is not null."""
    weighted = total = 0.0
    for revenue, value in accounts:
        if value is not None:
            weighted += revenue * value
            total += revenue
    return ratio(weighted, total)


def closed_in_sla(
    submitted_at: datetime, loop_closed_at: datetime | None, sla_hours: float
) -> bool:
    """The loop on an answer was closed within ``sla_hours`` of its submission."""
    if loop_closed_at is None:
        return False
    return (loop_closed_at - submitted_at) <= timedelta(hours=sla_hours)


def closed_loop_rate(detractors_closed_in_sla: int, detractors: int) -> float | None:
    """The share of counted detractors whose loop was closed within the SLA."""
    return ratio(detractors_closed_in_sla, detractors)


def portfolio_metrics(
    accounts: Sequence[AccountMetrics], *, responded_contacts: int, detractors_closed: int
) -> PortfolioMetrics:
    """The portfolio block from every account's figures and two counts they do not hold.

    ``responded_contacts`` is ``Σ RC``; ``detractors_closed`` the counted detractors
    closed within the SLA. ``accounts`` is summed in the order given: pass the
    document's order so float sums do not depend on the input's order.
    """
    with_feedback = [a for a in accounts if a.respondents > 0]
    promoters = sum(a.promoters for a in accounts)
    detractors = sum(a.detractors for a in accounts)
    respondents = sum(a.respondents for a in accounts)
    contacts = sum(a.contacts for a in accounts)
    responded = responded_contacts
    total_revenue = sum(a.revenue for a in accounts)
    covered = sum(a.revenue for a in with_feedback)
    risky = [a for a in accounts if a.at_risk]
    return PortfolioMetrics(
        accounts=len(accounts),
        accounts_with_feedback=len(with_feedback),
        account_coverage=account_coverage(len(with_feedback), len(accounts)),
        total_revenue=float(total_revenue),
        covered_revenue=float(covered),
        revenue_coverage=revenue_coverage(covered, total_revenue),
        contacts=contacts,
        responded_contacts=responded,
        response_rate=response_rate(responded, contacts),
        nps=nps(promoters, detractors, respondents),
        nps_strict=nps_strict(promoters, detractors, respondents, contacts, responded),
        revenue_weighted_nps=revenue_weighted_nps((a.revenue, a.nps) for a in accounts),
        full_tier_coverage_accounts=sum(1 for a in accounts if len(a.tiers_covered) == len(TIERS)),
        at_risk_accounts=len(risky),
        at_risk_revenue=float(sum(a.revenue for a in risky)),
        detractors=detractors,
        detractors_closed_in_sla=detractors_closed,
        closed_loop_rate=closed_loop_rate(detractors_closed, detractors),
    )

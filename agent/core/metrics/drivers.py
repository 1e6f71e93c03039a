"""Revenue-weighted drivers: each counted answer carries ``w = account revenue / R``.

So an account's revenue is shared among its respondents and never counted twice,
and the revenue of all drivers together is the covered revenue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping

from agent.core.document import DriverMetrics
from agent.core.metrics.account import nps
from agent.core.metrics.thresholds import ratio

__all__ = [
    "DriverCounts",
    "add_account_drivers",
    "driver_metrics",
    "driver_name",
    "respondent_weight",
    "revenue_nps",
]

#: Per driver: promoters, passives, detractors and their revenue (sums of ``w``).
DriverCounts = list[float]


def driver_name(raw: str | None) -> str | None:
    """The driver as reported: trimmed, case kept; empty is ``None``."""
    if raw is None:
        return None
    return raw.strip(" \t") or None


def respondent_weight(revenue: float, respondents: int) -> float:
    """``w``: the share of the account's revenue one of its respondents stands for."""
    return revenue / respondents if respondents else 0.0


def revenue_nps(
    promoter_revenue: float, passive_revenue: float, detractor_revenue: float
) -> float | None:
    """``100·(promoter - detractor revenue) / all three``; ``None`` when that sum is 0."""
    share = ratio(
        promoter_revenue - detractor_revenue,
        promoter_revenue + passive_revenue + detractor_revenue,
    )
    return None if share is None else 100.0 * share


def add_account_drivers(
    totals: MutableMapping[str | None, DriverCounts],
    account_drivers: Mapping[str | None, list[int]],
    revenue: float,
    respondents: int,
) -> None:
    """Add one account's (P, N, D) per driver and their revenue to the running totals.

    Revenue is ``count·revenue/R`` per category, so an account adds exactly its
    revenue over all its drivers.
    """
    for driver, counts in account_drivers.items():
        total = totals.get(driver)
        if total is None:
            total = totals[driver] = [0, 0, 0, 0.0, 0.0, 0.0]
        for k in range(3):
            total[k] += counts[k]
            total[3 + k] += revenue * counts[k] / respondents


def driver_metrics(totals: Mapping[str | None, DriverCounts]) -> list[DriverMetrics]:
    """One entry per driver, in string order of the name, ``None`` last."""
    names = sorted(d for d in totals if d is not None)
    if None in totals:
        names_or_none: Iterable[str | None] = [*names, None]
    else:
        names_or_none = names
    return [_entry(name, totals[name]) for name in names_or_none]


def _entry(name: str | None, total: DriverCounts) -> DriverMetrics:
    p, n, d = int(total[0]), int(total[1]), int(total[2])
    return DriverMetrics(
        driver=name,
        respondents=p + n + d,
        promoters=p,
        passives=n,
        detractors=d,
        nps=nps(p, d, p + n + d),
        promoter_revenue=total[3],
        passive_revenue=total[4],
        detractor_revenue=total[5],
        revenue_nps=revenue_nps(total[3], total[4], total[5]),
    )

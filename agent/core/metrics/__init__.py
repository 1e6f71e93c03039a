"""The figures of DOMAIN.md as small pure functions, one per figure, named after it.

- per account (``account``): nps, nps_strict, contact_coverage, tiers_covered,
  tier_coverage, tier_nps, tier_misaligned, recency_score, health_score,
  health_status, at_risk, open/overdue detractors, upsell_candidate;
- portfolio (``portfolio``): account_coverage, revenue_coverage, response_rate,
  revenue_weighted_nps, closed_in_sla, closed_loop_rate, portfolio_metrics;
- revenue-weighted drivers (``drivers``);
- which responses count (``counting``) and threshold tolerance (``thresholds``);
- beside the contract, the running agent's CRM task figures (``tasks``).

``agent.core.compute`` puts them together into the metrics document.
"""

from __future__ import annotations

from agent.core.metrics.account import (
    at_risk,
    contact_coverage,
    health_score,
    health_status,
    is_open_detractor,
    is_overdue_detractor,
    nps,
    nps_strict,
    open_detractors,
    overdue_detractors,
    recency_score,
    tier_coverage,
    tier_misaligned,
    tier_nps,
    tiers_covered,
    upsell_candidate,
)
from agent.core.metrics.counting import (
    Counted,
    in_window,
    is_later,
    latest_per_respondent,
    respondent_key,
)
from agent.core.metrics.drivers import (
    add_account_drivers,
    driver_metrics,
    driver_name,
    respondent_weight,
    revenue_nps,
)
from agent.core.metrics.portfolio import (
    account_coverage,
    closed_in_sla,
    closed_loop_rate,
    portfolio_metrics,
    response_rate,
    revenue_coverage,
    revenue_weighted_nps,
)
from agent.core.metrics.tasks import TaskRecord, task_figures
from agent.core.metrics.thresholds import TOLERANCE, at_most, ratio, reaches

__all__ = [
    "TOLERANCE",
    "Counted",
    "TaskRecord",
    "account_coverage",
    "add_account_drivers",
    "at_most",
    "at_risk",
    "closed_in_sla",
    "closed_loop_rate",
    "contact_coverage",
    "driver_metrics",
    "driver_name",
    "health_score",
    "health_status",
    "in_window",
    "is_later",
    "is_open_detractor",
    "is_overdue_detractor",
    "latest_per_respondent",
    "nps",
    "nps_strict",
    "open_detractors",
    "overdue_detractors",
    "portfolio_metrics",
    "ratio",
    "reaches",
    "recency_score",
    "respondent_key",
    "respondent_weight",
    "response_rate",
    "revenue_coverage",
    "revenue_nps",
    "revenue_weighted_nps",
    "task_figures",
    "tier_coverage",
    "tier_misaligned",
    "tier_nps",
    "tiers_covered",
    "upsell_candidate",
]

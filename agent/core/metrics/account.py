"""Per-account figures of DOMAIN.md, one small pure function each, named by its key.

``P``, ``N``, ``D`` are counted promoters, passives, detractors, ``R = P + N + D``,
``C`` the account's contacts with an email, ``RC`` the respondents that are contacts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from agent.core.contract import HealthConfig, MetricsConfig
from agent.core.document import HealthStatus
from agent.core.metrics.thresholds import at_most, ratio, reaches
from agent.core.models import TIERS, Response

__all__ = [
    "at_risk",
    "contact_coverage",
    "health_score",
    "health_status",
    "is_open_detractor",
    "is_overdue_detractor",
    "nps",
    "nps_strict",
    "open_detractors",
    "overdue_detractors",
    "recency_score",
    "tier_coverage",
    "tier_misaligned",
    "tier_nps",
    "tiers_covered",
    "upsell_candidate",
]

_DAY_SECONDS = 86_400.0


def nps(promoters: int, detractors: int, respondents: int) -> float | None:
    """``100·(P - D) / R``; ``None`` without respondents."""
    share = ratio(promoters - detractors, respondents)
    return None if share is None else 100.0 * share


def nps_strict(
    promoters: int, detractors: int, respondents: int, contacts: int, responded_contacts: int
) -> float | None:
    """NPS counting every contact who did not answer as a detractor."""
    silent = contacts - responded_contacts
    share = ratio(promoters - detractors - silent, respondents + silent)
    return None if share is None else 100.0 * share


def contact_coverage(responded_contacts: int, contacts: int) -> float | None:
    """``RC / C``: the share of the account's contacts (with an email) who answered."""
    return ratio(responded_contacts, contacts)


def tiers_covered(tier_respondents: Mapping[str, int]) -> list[str]:
    """The counted tiers with at least one respondent, alphabetically (never ``unknown``)."""
    return [tier for tier in TIERS if tier_respondents.get(tier, 0) > 0]


def tier_coverage(covered: Sequence[str]) -> float:
    """``len(tiers_covered) / 3``."""
    return len(covered) / len(TIERS)


def tier_nps(tier_counts: Mapping[str, tuple[int, int, int]]) -> dict[str, float]:
    """NPS per counted tier from its (P, N, D); tiers without respondents are left out."""
    out: dict[str, float] = {}
    for tier in TIERS:
        p, n, d = tier_counts.get(tier, (0, 0, 0))
        value = nps(p, d, p + n + d)
        if value is not None:
            out[tier] = value
    return out


def tier_misaligned(tier_scores: Mapping[str, float], spread: float) -> bool:
    """At least two tiers answered and their NPS lie ``spread`` or more apart."""
    if len(tier_scores) < 2:
        return False
    return reaches(max(tier_scores.values()) - min(tier_scores.values()), spread)


def recency_score(
    last_response_at: datetime | None, as_of: datetime, config: MetricsConfig
) -> float | None:
    """100 up to ``recency_full_days`` old, falling linearly to 0 at ``recency_zero_days``."""
    if last_response_at is None:
        return None
    age = (as_of - last_response_at).total_seconds() / _DAY_SECONDS
    full, zero = config.recency_full_days, config.recency_zero_days
    if age <= full:
        return 100.0
    if age >= zero:
        return 0.0
    return 100.0 * (zero - age) / (zero - full)


def health_score(
    nps_value: float | None,
    contact_coverage_value: float | None,
    tier_coverage_value: float,
    recency: float | None,
    *,
    misaligned: bool,
    config: HealthConfig,
) -> float | None:
    """Weighted NPS, coverage and recency, minus the misalignment penalty, in [0, 100]."""
    if nps_value is None:
        return None
    coverage = ((contact_coverage_value or 0.0) + tier_coverage_value) / 2
    score = (
        config.nps_weight * (nps_value + 100.0) / 2
        + config.coverage_weight * 100.0 * coverage
        + config.recency_weight * (recency or 0.0)
    )
    if misaligned:
        score -= config.misalignment_penalty
    return min(100.0, max(0.0, score))


def health_status(score: float | None, config: HealthConfig) -> HealthStatus:
    """``no_feedback`` without a score, else ``healthy`` / ``neutral`` / ``at_risk``."""
    if score is None:
        return "no_feedback"
    if reaches(score, config.healthy_at):
        return "healthy"
    if reaches(score, config.neutral_at):
        return "neutral"
    return "at_risk"


def at_risk(status: HealthStatus, executive_detractor: bool) -> bool:
    """At risk by health, or because an executive respondent is a detractor."""
    return status == "at_risk" or executive_detractor


def is_open_detractor(score: int, loop_closed_at: datetime | None) -> bool:
    """A detractor answer nobody has closed the loop on yet."""
    return score <= 6 and loop_closed_at is None


def is_overdue_detractor(
    score: int,
    loop_closed_at: datetime | None,
    submitted_at: datetime,
    as_of: datetime,
    sla_hours: float,
) -> bool:
    """An open detractor answer submitted more than ``sla_hours`` before ``as_of``."""
    if not is_open_detractor(score, loop_closed_at):
        return False
    return (as_of - submitted_at) > timedelta(hours=sla_hours)


def open_detractors(counted: Iterable[Response]) -> int:
    """How many of an account's counted responses are open detractors."""
    return sum(1 for r in counted if is_open_detractor(r.score, r.loop_closed_at))


def overdue_detractors(counted: Iterable[Response], as_of: datetime, sla_hours: float) -> int:
    """How many of an account's open detractors are past the loop SLA."""
    return sum(
        1
        for r in counted
        if is_overdue_detractor(r.score, r.loop_closed_at, r.submitted_at, as_of, sla_hours)
    )


def upsell_candidate(
    nps_value: float | None,
    revenue: float,
    revenue_potential: float | None,
    config: MetricsConfig,
) -> bool:
    """A promoter account (NPS ≥ 50) using at most half its potential revenue."""
    if nps_value is None or not reaches(nps_value, config.upsell_min_nps):
        return False
    if revenue_potential is None or revenue_potential <= 0:
        return False
    return at_most(revenue / revenue_potential, config.upsell_max_revenue_share)

"""The fields an expression may read, their types, and where each one lives.

This table is the whole surface of the expression language: a name that is not
here does not exist for a rule, so no expression can reach a Python attribute
such as ``__class__``. Each entry says how to read the value from the compiled
function's arguments: ``r`` (ResponseFacts), ``a`` (AccountFacts), ``p``
(PortfolioMetrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SCOPE_VARIABLES", "VARIABLES", "Field", "Kind", "Scope"]

Scope = Literal["response", "account", "portfolio"]
#: ``tiers`` is the record ``tier_nps`` (executive/management/frontline -> NPS);
#: ``map`` is a string map read with ``["key"]`` (account attributes).
Kind = Literal["num", "str", "bool", "time", "list", "map", "tiers", "null"]


@dataclass(frozen=True, slots=True)
class Field:
    kind: Kind
    optional: bool
    source: str
    doc: str
    #: The only values a text field can hold, when that set is fixed.
    values: tuple[str, ...] = ()


def _f(
    kind: Kind, source: str, doc: str, *, optional: bool = False, values: tuple[str, ...] = ()
) -> Field:
    return Field(kind=kind, optional=optional, source=source, doc=doc, values=values)


_HEALTH = ("no_feedback", "healthy", "neutral", "at_risk")
_CATEGORY = ("promoter", "passive", "detractor")
_TIER = ("executive", "management", "frontline", "unknown")


def _contact(attr: str) -> str:
    return f"(r.contact.{attr} if r.contact is not None else None)"


_M = "a.metrics."

_ACCOUNT: dict[str, Field] = {
    "id": _f("str", _M + "id", "CRM account id"),
    "name": _f("str", _M + "name", "account name"),
    "revenue": _f("num", _M + "revenue", "revenue"),
    "revenue_potential": _f(
        "num", "a.entity.revenue_potential", "revenue potential", optional=True
    ),
    "owner_email": _f("str", "a.entity.owner_email", "account owner's email", optional=True),
    "domains": _f("list", "a.entity.domains", "the account's domains"),
    "attributes": _f("map", "a.entity.attributes", 'other CRM attributes: attributes["region"]'),
    "revenue_rank": _f("num", "a.revenue_rank", "1 for the largest account by revenue"),
    "revenue_share": _f("num", "a.revenue_share", "revenue / total revenue (0-1)", optional=True),
    "cumulative_revenue_share": _f(
        "num",
        "a.cumulative_revenue_share",
        "share of total revenue of this and all larger accounts (0-1)",
        optional=True,
    ),
    "contacts": _f("num", _M + "contacts", "contacts with an email"),
    "respondents": _f("num", _M + "respondents", "counted respondents"),
    "promoters": _f("num", _M + "promoters", "counted promoters"),
    "passives": _f("num", _M + "passives", "counted passives"),
    "detractors": _f("num", _M + "detractors", "counted detractors"),
    "nps": _f("num", _M + "nps", "NPS (-100..100)", optional=True),
    "nps_strict": _f("num", _M + "nps_strict", "strict NPS", optional=True),
    "contact_coverage": _f("num", _M + "contact_coverage", "0-1", optional=True),
    "tiers_covered": _f("list", _M + "tiers_covered", "tiers with a respondent"),
    "tier_coverage": _f("num", _M + "tier_coverage", "0-1"),
    "tier_nps": _f("tiers", _M + "tier_nps", "tier_nps.executive / .management / .frontline"),
    "tier_misaligned": _f("bool", _M + "tier_misaligned", "tiers disagree"),
    "last_response_at": _f("time", _M + "last_response_at", "latest response", optional=True),
    "recency_score": _f("num", _M + "recency_score", "0-100", optional=True),
    "health_score": _f("num", _M + "health_score", "0-100", optional=True),
    "health_status": _f(
        "str", _M + "health_status", "no_feedback, healthy, neutral or at_risk", values=_HEALTH
    ),
    "at_risk": _f("bool", _M + "at_risk", "at risk"),
    "open_detractors": _f("num", _M + "open_detractors", "detractors with an open loop"),
    "overdue_detractors": _f("num", _M + "overdue_detractors", "open past the loop SLA"),
    "upsell_candidate": _f("bool", _M + "upsell_candidate", "promoter account, low revenue"),
}

_PORTFOLIO_NUM = (
    "accounts",
    "accounts_with_feedback",
    "total_revenue",
    "covered_revenue",
    "contacts",
    "responded_contacts",
    "full_tier_coverage_accounts",
    "at_risk_accounts",
    "at_risk_revenue",
    "detractors",
    "detractors_closed_in_sla",
)
_PORTFOLIO_OPT = (
    "account_coverage",
    "revenue_coverage",
    "response_rate",
    "nps",
    "nps_strict",
    "revenue_weighted_nps",
    "closed_loop_rate",
)

_PORTFOLIO: dict[str, Field] = {
    **{n: _f("num", f"p.{n}", "portfolio figure") for n in _PORTFOLIO_NUM},
    **{n: _f("num", f"p.{n}", "portfolio figure", optional=True) for n in _PORTFOLIO_OPT},
    "coverage_planned_contacts": _f(
        "num",
        "p.coverage_planned_contacts",
        "contacts the coverage plan asks to survey",
        optional=True,
    ),
    "coverage_planned": _f(
        "num", "p.coverage_planned", "revenue coverage if all planned answered", optional=True
    ),
    "coverage_expected": _f(
        "num", "p.coverage_expected", "revenue coverage the plan expects", optional=True
    ),
}

_RESPONSE: dict[str, Field] = {
    "response_id": _f("str", "r.response.response_id", "id within its source"),
    "score": _f("num", "r.response.score", "0-10"),
    # Inline rather than the ``Response.category`` property: a million responses per
    # rule make the property call the largest cost of evaluation. Same thresholds.
    "category": _f(
        "str",
        '("detractor" if r.response.score <= 6 else "passive" if r.response.score <= 8'
        ' else "promoter")',
        "promoter, passive or detractor",
        values=_CATEGORY,
    ),
    "comment": _f("str", "r.response.comment", "free text", optional=True),
    "driver": _f("str", "r.response.driver", "driver named by the answer", optional=True),
    "email": _f("str", "r.response.email", "respondent email", optional=True),
    "source": _f("str", "r.response.source", "where the response came from"),
    "submitted_at": _f("time", "r.response.submitted_at", "when it was submitted"),
    "loop_closed_at": _f("time", "r.closed_at", "when the loop was closed", optional=True),
    "counted": _f("bool", "r.counted", "counts under the metric contract"),
}

_CONTACT: dict[str, Field] = {
    "known": _f("bool", "(r.contact is not None)", "matched a CRM contact"),
    "id": _f("str", _contact("id"), "CRM contact id", optional=True),
    "email": _f("str", _contact("email"), "contact email", optional=True),
    "name": _f("str", _contact("name"), "contact name", optional=True),
    "title": _f("str", _contact("title"), "job title", optional=True),
    "tier": _f("str", "r.tier", "executive, management, frontline or unknown", values=_TIER),
}

#: Every variable and its fields.
VARIABLES: dict[str, dict[str, Field]] = {
    "response": _RESPONSE,
    "contact": _CONTACT,
    "account": _ACCOUNT,
    "portfolio": _PORTFOLIO,
}

#: Which variables each scope can see.
SCOPE_VARIABLES: dict[Scope, tuple[str, ...]] = {
    "response": ("response", "contact", "account", "portfolio"),
    "account": ("account", "portfolio"),
    "portfolio": ("portfolio",),
}

#: The keys of ``account.tier_nps``.
TIER_KEYS = ("executive", "management", "frontline")

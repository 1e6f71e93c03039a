"""The ``metrics`` JSON document of DOMAIN.md as typed values.

These are the figures every other part reads: the CRM write-back, the rule engine,
the report. Field names are DOMAIN.md's keys, so ``asdict`` gives the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from agent.core.models import Category, Dropped, Rejected, Tier

__all__ = [
    "AccountMetrics",
    "ContactFigures",
    "DriverMetrics",
    "HealthStatus",
    "MetricsDocument",
    "PortfolioMetrics",
    "TaskFigures",
    "Unmatched",
    "UnmatchedReason",
]

HealthStatus = Literal["no_feedback", "healthy", "neutral", "at_risk"]
UnmatchedReason = Literal["no_match", "ambiguous_domain", "free_mail_domain", "account_rejected"]


@dataclass(frozen=True, slots=True)
class AccountMetrics:
    id: str
    name: str
    revenue: float
    contacts: int
    respondents: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    nps_strict: float | None
    contact_coverage: float | None
    tiers_covered: list[str]
    tier_coverage: float
    tier_nps: dict[str, float]
    tier_misaligned: bool
    last_response_at: datetime | None
    recency_score: float | None
    health_score: float | None
    health_status: HealthStatus
    at_risk: bool
    open_detractors: int
    overdue_detractors: int
    upsell_candidate: bool


@dataclass(frozen=True, slots=True)
class PortfolioMetrics:
    accounts: int
    accounts_with_feedback: int
    account_coverage: float | None
    total_revenue: float
    covered_revenue: float
    revenue_coverage: float | None
    contacts: int
    responded_contacts: int
    response_rate: float | None
    nps: float | None
    nps_strict: float | None
    revenue_weighted_nps: float | None
    full_tier_coverage_accounts: int
    at_risk_accounts: int
    at_risk_revenue: float
    detractors: int
    detractors_closed_in_sla: int
    closed_loop_rate: float | None


@dataclass(frozen=True, slots=True)
class DriverMetrics:
    driver: str | None
    respondents: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    promoter_revenue: float
    passive_revenue: float
    detractor_revenue: float
    revenue_nps: float | None


@dataclass(frozen=True, slots=True)
class Unmatched:
    response_id: str
    email: str | None
    reason: UnmatchedReason


@dataclass(frozen=True, slots=True)
class ContactFigures:
    """What the write-back needs per contact: its tier and its counted response."""

    contact_id: str
    account_id: str
    tier: Tier
    last_score: int | None = None
    nps_category: Category | None = None
    last_response_at: datetime | None = None
    #: In the coverage plan's send list (set only when ``plan.write_back`` is on).
    survey_next: bool | None = None


@dataclass(frozen=True, slots=True)
class TaskFigures:
    """The running agent's CRM tasks as of the document's ``as_of`` (docs/metrics.md).

    Not a contract figure: the document has this section only where the agent keeps
    CRM tasks, so a CRM folder's document stays exactly the contract's.
    """

    #: The CRM whose task list these are (``salesforce``, ``hubspot``, ``files``).
    crm: str
    #: Tasks the rules asked for (recorded in the task outbox).
    recorded: int
    #: Of those, not in the CRM yet (waiting for their create, or its retry).
    pending: int
    #: In the CRM: ``open + completed``.
    created: int
    open: int
    #: Open past their due time.
    overdue: int
    completed: int
    #: Completed at or before their due time.
    completed_in_time: int
    #: Completed by their owner in the CRM (read back), not only by the agent.
    completed_in_crm: int
    #: Tasks about a detractor's answer (score 0-6), whatever their state.
    detractor_tasks: int
    detractor_tasks_completed: int
    #: Of those, completed within ``loop_sla_hours`` of the answer.
    detractor_tasks_closed_in_sla: int
    #: ``detractor_tasks_closed_in_sla / detractor_tasks`` (None without detractor tasks).
    closed_loop_rate: float | None


@dataclass(frozen=True, slots=True, weakref_slot=True)  # caches hold it weakly
class MetricsDocument:
    """The whole document; ``contacts`` is not part of the JSON, only of write-back."""

    as_of: datetime
    portfolio: PortfolioMetrics
    accounts: list[AccountMetrics]
    drivers: list[DriverMetrics]
    unmatched: list[Unmatched]
    rejected: list[Rejected]
    contacts: list[ContactFigures] = field(default_factory=list)
    #: Account and contact rows not used in the figures (file, position, reason).
    dropped: list[Dropped] = field(default_factory=list)
    #: The CRM tasks, where the agent keeps them (None: no ``tasks`` section).
    tasks: TaskFigures | None = None

    def to_json_obj(self) -> dict[str, Any]:
        """The JSON document of DOMAIN.md (datetimes as ISO 8601, unrounded numbers);
        with the ``tasks`` section after the contract's keys when there are tasks."""
        doc = {
            "as_of": self.as_of.isoformat(),
            "portfolio": _plain(self.portfolio),
            "accounts": [_plain(a) for a in self.accounts],
            "drivers": [_plain(d) for d in self.drivers],
            "unmatched": [_plain(u) for u in self.unmatched],
            "rejected": [_plain(r) for r in self.rejected],
            "dropped": [_plain(d) for d in self.dropped],
        }
        if self.tasks is not None:
            doc["tasks"] = _plain(self.tasks)
        return doc


#: The field names of each dataclass written (``fields()`` rebuilds them at every call).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
#: Values written as they are (``_jsonable`` returns them unchanged), without a call.
_AS_IS: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict: datetimes become ISO 8601 strings.

    Called once per account, contact and row of a document: names are looked up once
    per class, and plain values are taken without a call.
    """
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    plain: dict[str, Any] = {}
    for name in names:
        item = getattr(value, name)
        plain[name] = item if type(item) in _AS_IS else _jsonable(item)
    return plain


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value

"""What the report shows, picked from the metrics document: no new figures, no rounding.

Each value here is the document's own number (or a count/sum the document already
holds); rounding happens only where text is made, through ``agent.report.present.fmt``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agent.core.document import AccountMetrics, DriverMetrics, MetricsDocument, TaskFigures
from agent.core.models import Account
from agent.report.present import fmt

__all__ = [
    "TIER_ROWS",
    "Headline",
    "TierRow",
    "UpsellPoint",
    "at_risk_accounts",
    "at_risk_reason",
    "digest_figures",
    "driver_label",
    "headline_figures",
    "overdue_accounts",
    "plotted_points",
    "task_cards",
    "task_headline",
    "tier_rows",
    "upsell_points",
]

#: Tiers top-down as a CX lead reads an account: executives first.
TIER_ROWS: tuple[str, ...] = ("executive", "management", "frontline")


@dataclass(frozen=True, slots=True)
class Headline:
    """One headline figure: its document key, a label, the unrounded value and its text."""

    key: str
    label: str
    value: float | None
    text: str
    note: str


def headline_figures(doc: MetricsDocument) -> list[Headline]:
    """The eight figures shown side by side, NPS next to the coverage it rests on."""
    p = doc.portfolio
    respondents = sum(a.respondents for a in doc.accounts)
    return [
        Headline("nps", "NPS", p.nps, fmt(p.nps), f"{_n(respondents)} respondents"),
        Headline(
            "nps_strict", "Strict NPS", p.nps_strict, fmt(p.nps_strict), "silent contacts count"
        ),
        Headline(
            "revenue_weighted_nps",
            "Revenue-weighted NPS",
            p.revenue_weighted_nps,
            fmt(p.revenue_weighted_nps),
            "weighted by account revenue",
        ),
        _ratio(
            "account_coverage",
            "Account coverage",
            p.account_coverage,
            f"{_n(p.accounts_with_feedback)} of {_n(p.accounts)} accounts",
        ),
        _ratio(
            "revenue_coverage",
            "Revenue coverage",
            p.revenue_coverage,
            f"{_money(p.covered_revenue)} of {_money(p.total_revenue)}",
        ),
        _ratio(
            "response_rate",
            "Response rate",
            p.response_rate,
            f"{_n(p.responded_contacts)} of {_n(p.contacts)} contacts",
        ),
        _ratio(
            "closed_loop_rate",
            "Closed-loop rate",
            p.closed_loop_rate,
            f"{_n(p.detractors_closed_in_sla)} of {_n(p.detractors)} detractors in time",
        ),
        Headline(
            "at_risk_revenue",
            "At-risk revenue",
            p.at_risk_revenue,
            _money(p.at_risk_revenue),
            f"{_n(p.at_risk_accounts)} account{'' if p.at_risk_accounts == 1 else 's'} at risk",
        ),
    ]


def digest_figures(doc: MetricsDocument) -> list[Headline]:
    """What the weekly digest lists: the headline figures, then the task closed-loop rate
    where the agent keeps CRM tasks."""
    tasks = task_headline(doc)
    return [*headline_figures(doc), *([tasks] if tasks is not None else [])]


def task_headline(doc: MetricsDocument) -> Headline | None:
    """The task closed-loop rate with what is still open (None: the agent keeps no tasks).

    Shown beside the headline figures in the weekly digest, not in the report's eight
    cards: the report gives the tasks a section of their own (``task_cards``).
    """
    t = doc.tasks
    if t is None:
        return None
    return _ratio(
        "tasks.closed_loop_rate",
        "Task closed-loop rate",
        t.closed_loop_rate,
        f"{_n(t.detractor_tasks_closed_in_sla)} of {_n(t.detractor_tasks)} detractor tasks "
        f"in time; {_n(t.open)} open, {_n(t.overdue)} overdue",
    )


def task_cards(t: TaskFigures) -> list[Headline]:
    """The report's CRM task cards: created, completed, in time, open, overdue, the rate."""

    def count(key: str, label: str, value: int, note: str) -> Headline:
        return Headline(f"tasks.{key}", label, value, _n(value), note)

    return [
        count("created", "Tasks created", t.created, f"{_n(t.pending)} waiting to be created"),
        count(
            "completed",
            "Completed",
            t.completed,
            f"{_n(t.completed_in_crm)} by their owner in the CRM",
        ),
        count("completed_in_time", "Completed in time", t.completed_in_time, "by their due time"),
        count("open", "Open", t.open, "in the owners' task lists"),
        count("overdue", "Overdue", t.overdue, "open past their due time"),
        _ratio(
            "tasks.closed_loop_rate",
            "Task closed-loop rate",
            t.closed_loop_rate,
            f"{_n(t.detractor_tasks_closed_in_sla)} of {_n(t.detractor_tasks)} detractor "
            "tasks in time",
        ),
    ]


def _ratio(key: str, label: str, value: float | None, note: str) -> Headline:
    return Headline(key, label, value, fmt(value, percent=True), note)


def _money(value: float) -> str:
    return fmt(value, decimals=0)


def _n(count: int) -> str:
    """A count, grouped like every other number (1,546)."""
    return fmt(count, decimals=0)


def driver_label(driver: DriverMetrics) -> str:
    """The driver's name, or a readable stand-in for answers that named none."""
    return driver.driver if driver.driver is not None else "(no driver)"


@dataclass(frozen=True, slots=True)
class TierRow:
    """One account of the tier map: tier NPS by tier (absent = that tier did not answer)."""

    account: AccountMetrics
    tier_nps: Mapping[str, float]
    misaligned: bool
    #: Contacts of each tier with a counted answer: how many people each tier NPS rests on.
    tier_respondents: Mapping[str, int] = field(default_factory=dict)


def tier_rows(doc: MetricsDocument, top: int) -> list[TierRow]:
    """The ``top`` accounts by revenue (the document's order), with their tier figures."""
    shown = doc.accounts[:top]
    wanted = {a.id for a in shown}
    answered: Counter[tuple[str, str]] = Counter(
        (c.account_id, c.tier)
        for c in doc.contacts
        if c.account_id in wanted and c.nps_category is not None
    )
    return [
        TierRow(
            a,
            a.tier_nps,
            a.tier_misaligned,
            {tier: answered[(a.id, tier)] for tier in TIER_ROWS if answered[(a.id, tier)]},
        )
        for a in shown
    ]


@dataclass(frozen=True, slots=True)
class UpsellPoint:
    """An account with an NPS and a revenue potential, placed by how much of it is realised."""

    account: AccountMetrics
    nps: float
    potential: float

    @property
    def realised(self) -> float:
        """Revenue as a share of potential: the quadrant's horizontal axis."""
        return self.account.revenue / self.potential


def upsell_points(doc: MetricsDocument, accounts: Sequence[Account]) -> list[UpsellPoint]:
    """Accounts that can be placed: they have an NPS and a positive revenue potential."""
    potential = {a.id: a.revenue_potential for a in accounts if a.revenue_potential is not None}
    points = []
    for a in doc.accounts:
        pot = potential.get(a.id)
        if a.nps is not None and pot is not None and pot > 0:
            points.append(UpsellPoint(a, a.nps, pot))
    return points


def plotted_points(points: Sequence[UpsellPoint], limit: int) -> list[UpsellPoint]:
    """At most ``limit`` dots, so a 50,000-account portfolio stays a readable, small chart.

    Every upsell candidate comes first (most untapped potential first), then the
    other accounts by revenue, largest first: the dots that matter are never dropped.
    """
    candidates = sorted(
        (p for p in points if p.account.upsell_candidate),
        key=lambda p: p.account.revenue - p.potential,
    )
    others = [p for p in points if not p.account.upsell_candidate]  # already by revenue
    return [*candidates, *others][:limit]


def at_risk_accounts(doc: MetricsDocument) -> list[AccountMetrics]:
    """Accounts flagged ``at_risk``, largest revenue first."""
    return [a for a in doc.accounts if a.at_risk]


def at_risk_reason(account: AccountMetrics) -> str:
    """Why an at-risk account is flagged (DOMAIN.md: low health or an executive detractor)."""
    if account.health_status == "at_risk":
        return "low health score"
    return "an executive is a detractor"


def overdue_accounts(doc: MetricsDocument) -> list[AccountMetrics]:
    """Accounts with detractors not called back within the SLA, largest revenue first."""
    return [a for a in doc.accounts if a.overdue_detractors > 0]

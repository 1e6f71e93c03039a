"""What rules are evaluated over: typed facts built from the metrics document.

The evaluator never reads a database or a CRM. The caller hands it the
``MetricsDocument`` of the cycle, the CRM accounts and, for ``response`` rules, one
``ResponseFacts`` per matched response (which account and contact it matched, the
contact's tier and whether it counts under DOMAIN.md's counting rules).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from agent.core.compute import MatchedResponse
from agent.core.document import AccountMetrics, MetricsDocument, PortfolioMetrics
from agent.core.models import Account, Contact
from agent.rules.history import HistorySource, RuleHistory

__all__ = [
    "AccountFacts",
    "PortfolioFacts",
    "ResponseFacts",
    "RuleInputs",
    "account_inputs",
    "build_inputs",
    "crm_closed_at",
    "response_facts",
]


#: One matched response and what matching found out about it: the core's matched
#: response itself (``loop_closed_at``: when the CRM says the loop was closed, else
#: ``None``, and then ``response.loop_closed_at`` holds). The same objects, not copies:
#: a cycle holds a million of them at 50,000 accounts.
ResponseFacts = MatchedResponse


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """An account's figures plus its CRM entity and its place in the revenue ranking.

    ``revenue_rank`` is 1 for the largest account (the document's order: revenue
    descending, then id). ``cumulative_revenue_share`` is the share of total revenue
    held by this account and every larger one: "work down from the largest accounts".
    """

    entity: Account
    metrics: AccountMetrics
    revenue_rank: int
    revenue_share: float | None
    cumulative_revenue_share: float | None


@dataclass(frozen=True, slots=True)
class PortfolioFacts(PortfolioMetrics):
    """The portfolio's figures plus the headline of the last coverage plan (if any):
    how many contacts to survey, and the revenue coverage planned and expected."""

    coverage_planned_contacts: int | None = None
    coverage_planned: float | None = None
    coverage_expected: float | None = None

    @classmethod
    def of(cls, metrics: PortfolioMetrics, plan: Mapping[str, Any] | None) -> PortfolioFacts:
        plan = plan or {}
        return cls(
            **{f.name: getattr(metrics, f.name) for f in fields(PortfolioMetrics)},
            coverage_planned_contacts=plan.get("planned_contacts"),
            coverage_planned=plan.get("coverage_planned"),
            coverage_expected=plan.get("coverage_expected"),
        )


@dataclass(frozen=True, slots=True)
class RuleInputs:
    """Everything one evaluation reads; ``accounts`` is keyed by account id.

    ``document`` is the cycle's whole metrics document: expressions never read it;
    an alert that carries the report's figures (``attach: driver_chart``) does.
    """

    as_of: datetime
    portfolio: PortfolioMetrics
    accounts: Mapping[str, AccountFacts]
    responses: Sequence[ResponseFacts]
    document: MetricsDocument
    #: The past the change functions read (previous, delta, changed, since, held).
    history: RuleHistory | None = None


def build_inputs(
    document: MetricsDocument,
    accounts: Iterable[Account],
    responses: Sequence[ResponseFacts] = (),
    plan: Mapping[str, Any] | None = None,
    history: HistorySource | None = None,
) -> RuleInputs:
    """Join the document's account figures with the CRM entities and rank them.

    ``plan`` is the stored coverage plan's headline (``agent.sync.coverage``).
    ``history`` is the stored figure history; without it, change functions on account
    and portfolio figures give null (a response's previous answer is still known).
    """
    entities = {a.id: a for a in accounts}
    total = document.portfolio.total_revenue
    facts: dict[str, AccountFacts] = {}
    running = 0.0
    for rank, metrics in enumerate(document.accounts, start=1):
        running += metrics.revenue
        entity = entities.get(metrics.id) or Account(
            id=metrics.id, name=metrics.name, revenue=metrics.revenue
        )
        facts[metrics.id] = AccountFacts(
            entity=entity,
            metrics=metrics,
            revenue_rank=rank,
            revenue_share=metrics.revenue / total if total else None,
            cumulative_revenue_share=running / total if total else None,
        )
    return RuleInputs(
        as_of=document.as_of,
        portfolio=PortfolioFacts.of(document.portfolio, plan),
        accounts=facts,
        responses=responses,
        document=document,
        history=RuleHistory(history, responses),
    )


def account_inputs(
    document: MetricsDocument,
    accounts: Mapping[str, tuple[Account, AccountMetrics]],
    responses: Sequence[ResponseFacts],
    as_of: datetime,
    *,
    plan: Mapping[str, Any] | None = None,
    history: HistorySource | None = None,
) -> RuleInputs:
    """Rule inputs for a few accounts with fresh figures, ranked as in ``document``.

    The portfolio block and the ranking are the document's: one new answer does not
    wait for the portfolio to be summed again. Accounts not in the document yet rank last.
    """
    total = document.portfolio.total_revenue
    ranked = _ranked(document)
    placed = sorted((ranked[a], a) for a in accounts if a in ranked)  # in the document's order
    facts: dict[str, AccountFacts] = {}
    for (rank, running), account_id in placed:
        entity, metrics = accounts[account_id]
        facts[account_id] = AccountFacts(
            entity=entity,
            metrics=metrics,
            revenue_rank=rank,
            revenue_share=metrics.revenue / total if total else None,
            cumulative_revenue_share=running / total if total else None,
        )
    for account_id, (entity, metrics) in accounts.items():
        if account_id not in facts:
            facts[account_id] = AccountFacts(
                entity, metrics, len(document.accounts) + 1, None, None
            )
    return RuleInputs(
        as_of=as_of,
        portfolio=PortfolioFacts.of(document.portfolio, plan),
        accounts=facts,
        responses=responses,
        document=document,
        # only these accounts are evaluated: their history rows alone are read
        history=RuleHistory(history, responses, accounts=list(facts)),
    )


#: The last document's ranking (``_ranked``); documents are never changed once built.
#: Held by a weak reference: a running agent's last document (500,000 contact rows at
#: 50,000 accounts) must not stay alive beside the next one being computed because an
#: answer was once ranked in it.
_RANKING: list[tuple[weakref.ref[MetricsDocument], dict[str, tuple[int, float]]]] = []


def _ranked(document: MetricsDocument) -> dict[str, tuple[int, float]]:
    """Each account's revenue rank in ``document`` and the revenue of the accounts
    ranked up to it (the same sums, in the same order, as a whole evaluation's). Built
    once per document: the answers path asks it for every answer, and a pass over
    50,000 accounts per answer was most of an answer's own work."""
    cached = _RANKING[-1] if _RANKING else None
    if cached is not None and cached[0]() is document:
        return cached[1]
    running = 0.0
    ranked: dict[str, tuple[int, float]] = {}
    for rank, metrics in enumerate(document.accounts, start=1):
        running += metrics.revenue
        ranked[metrics.id] = (rank, running)
    _RANKING[:] = [(weakref.ref(document), ranked)]
    return ranked


def crm_closed_at(contact: Contact | None, field: str | None) -> datetime | None:
    """When the CRM says a detractor's loop was closed (``slack.loop_closed_field``).

    The field holds an ISO 8601 time (no zone: UTC); anything else counts as not closed.
    """
    if contact is None or not field:
        return None
    value = contact.crm_values.get(field)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def response_facts(
    matches: Sequence[MatchedResponse], closed_field: str | None = None
) -> Sequence[ResponseFacts]:
    """Rule facts of the core's matched responses, with the CRM's loop-closed time.

    The matches themselves where the CRM says nothing (every one without
    ``closed_field``); a copy carrying the CRM's time for the others."""
    if not closed_field:
        return matches
    out: list[ResponseFacts] = []
    for m in matches:
        closed = crm_closed_at(m.contact, closed_field)
        out.append(m if closed is None else m._replace(loop_closed_at=closed))
    return out

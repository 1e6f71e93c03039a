"""Small builders of typed facts for rule and alert tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from agent.core.document import AccountMetrics, MetricsDocument, PortfolioMetrics
from agent.core.models import Account, Contact, Response, Tier
from agent.rules.facts import ResponseFacts, RuleInputs, build_inputs

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def account_metrics(id: str = "A1", **changes: Any) -> AccountMetrics:  # DOMAIN.md's key
    base = AccountMetrics(
        id=id,
        name=f"Account {id}",
        revenue=100_000.0,
        contacts=5,
        respondents=2,
        promoters=1,
        passives=0,
        detractors=1,
        nps=0.0,
        nps_strict=-40.0,
        contact_coverage=0.4,
        tiers_covered=["frontline"],
        tier_coverage=1 / 3,
        tier_nps={"frontline": 0.0},
        tier_misaligned=False,
        last_response_at=AS_OF,
        recency_score=100.0,
        health_score=55.0,
        health_status="neutral",
        at_risk=False,
        open_detractors=0,
        overdue_detractors=0,
        upsell_candidate=False,
    )
    return replace(base, **changes)


def portfolio(**changes: Any) -> PortfolioMetrics:
    base = PortfolioMetrics(
        accounts=1,
        accounts_with_feedback=1,
        account_coverage=1.0,
        total_revenue=100_000.0,
        covered_revenue=100_000.0,
        revenue_coverage=1.0,
        contacts=5,
        responded_contacts=2,
        response_rate=0.4,
        nps=0.0,
        nps_strict=-40.0,
        revenue_weighted_nps=0.0,
        full_tier_coverage_accounts=0,
        at_risk_accounts=0,
        at_risk_revenue=0.0,
        detractors=1,
        detractors_closed_in_sla=0,
        closed_loop_rate=0.0,
    )
    return replace(base, **changes)


def document(
    accounts: list[AccountMetrics], as_of: datetime = AS_OF, **portfolio_changes: Any
) -> MetricsDocument:
    ordered = sorted(accounts, key=lambda a: (-a.revenue, a.id))
    total = sum(a.revenue for a in accounts)
    pf = portfolio(accounts=len(accounts), total_revenue=total, **portfolio_changes)
    return MetricsDocument(
        as_of=as_of, portfolio=pf, accounts=ordered, drivers=[], unmatched=[], rejected=[]
    )


def entity(id: str = "A1", **changes: Any) -> Account:  # the CRM's id
    return Account(id=id, name=f"Account {id}", **changes)


def response_facts(
    response_id: str = "R1",
    *,
    account: Account | None = None,
    score: int = 3,
    tier: Tier = "executive",
    submitted_at: datetime = AS_OF,
    comment: str | None = "Support never answers.",
    counted: bool = True,
    contact_name: str = "Dana Exec",
    loop_closed_at: datetime | None = None,
) -> ResponseFacts:
    account = account or entity()
    contact = Contact(
        id=f"C-{response_id}",
        account_id=account.id,
        email=f"{response_id.lower()}@acme.example",
        name=contact_name,
        title="CFO",
    )
    response = Response(
        response_id=response_id,
        email=contact.email,
        score=score,
        submitted_at=submitted_at,
        comment=comment,
        loop_closed_at=loop_closed_at,
        source="responses.csv",
    )
    return ResponseFacts(
        response=response, account=account, contact=contact, tier=tier, counted=counted
    )


def inputs(
    accounts: list[AccountMetrics] | None = None,
    responses: list[ResponseFacts] = (),  # type: ignore[assignment]  # tuple default is fine
    *,
    entities: list[Account] | None = None,
    as_of: datetime = AS_OF,
    **portfolio_changes: Any,
) -> RuleInputs:
    accounts = accounts if accounts is not None else [account_metrics()]
    doc = document(accounts, as_of, **portfolio_changes)
    return build_inputs(doc, entities or [entity(a.id) for a in accounts], list(responses))

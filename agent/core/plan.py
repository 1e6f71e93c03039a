"""Who to survey next: the revenue-first coverage plan and its forecast.

Pure: the accounts, their contacts (with tiers), every matched response and the
metrics document in, the plan out. docs/metrics.md ("Coverage plan") states each
step; the functions below follow it in order:

1. accounts by revenue descending, then id; *covered* = at least one counted respondent;
2. walk the uncovered accounts, planning each while coverage stays below the target,
   stopping at the first that reaches it (no eligible contact: skipped; revenue 0:
   never planned);
3. eligible contact: has an email and no matched answer in the last ``fatigue_days``;
4. up to ``per_account`` contacts: one per tier (executive, management, frontline),
   then the rest in tier order, ``unknown`` last, each by id;
5. tier gaps among the ``top`` covered accounts;
6. the forecast: ``chance = 1 - Π(1 - r_t)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agent.core.compute import MatchedResponse
from agent.core.document import MetricsDocument
from agent.core.models import Account, Contact, Tier

__all__ = [
    "PLAN_TIER_ORDER",
    "CoveragePlan",
    "PlanOptions",
    "PlannedAccount",
    "PlannedContact",
    "TierGap",
    "account_chance",
    "coverage_plan",
    "pick_contacts",
    "tier_response_rates",
]

#: The order contacts are chosen in: the three tiers first, ``unknown`` last.
PLAN_TIER_ORDER: tuple[Tier, ...] = ("executive", "management", "frontline", "unknown")
_COUNTED_TIERS: tuple[Tier, ...] = ("executive", "management", "frontline")


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """The command's options; defaults are the documented ones."""

    target: float = 0.8
    per_account: int = 3
    fatigue_days: int = 90
    top: int = 25


@dataclass(frozen=True, slots=True)
class PlannedContact:
    id: str
    email: str
    tier: Tier


@dataclass(frozen=True, slots=True)
class PlannedAccount:
    id: str
    name: str
    revenue: float
    cumulative_coverage: float
    chance: float
    contacts: list[PlannedContact]


@dataclass(frozen=True, slots=True)
class TierGap:
    account_id: str
    missing_tiers: list[Tier]
    contacts: list[PlannedContact]


@dataclass(frozen=True, slots=True)
class CoveragePlan:
    as_of: datetime
    target: float
    coverage_now: float | None
    coverage_planned: float | None
    coverage_expected: float | None
    accounts: list[PlannedAccount] = field(default_factory=list)
    tier_gaps: list[TierGap] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def contact_ids(self) -> set[str]:
        """Every planned and tier-gap contact: the ones ``survey_next`` marks."""
        ids = {c.id for a in self.accounts for c in a.contacts}
        ids.update(c.id for g in self.tier_gaps for c in g.contacts)
        return ids

    @property
    def planned_contacts(self) -> int:
        """How many contacts the plan asks to survey (planned accounts and tier gaps)."""
        return len(self.contact_ids())

    def to_json_obj(self) -> dict[str, Any]:
        """The documented JSON shape of ``ax-agent plan coverage --format json``."""
        return {
            "as_of": self.as_of.isoformat(),
            "target": self.target,
            "coverage_now": self.coverage_now,
            "coverage_planned": self.coverage_planned,
            "coverage_expected": self.coverage_expected,
            "accounts": [
                {
                    "id": a.id,
                    "name": a.name,
                    "revenue": a.revenue,
                    "cumulative_coverage": a.cumulative_coverage,
                    "chance": a.chance,
                    "contacts": [_contact_json(c) for c in a.contacts],
                }
                for a in self.accounts
            ],
            "tier_gaps": [
                {
                    "account_id": g.account_id,
                    "missing_tiers": g.missing_tiers,
                    "contacts": [_contact_json(c) for c in g.contacts],
                }
                for g in self.tier_gaps
            ],
            "skipped": [{"account_id": a, "reason": r} for a, r in self.skipped],
        }


def _contact_json(contact: PlannedContact) -> dict[str, str]:
    return {"id": contact.id, "email": contact.email, "tier": contact.tier}


def coverage_plan(
    document: MetricsDocument,
    accounts: Iterable[Account],
    contacts: Iterable[Contact],
    matches: Iterable[MatchedResponse],
    options: PlanOptions | None = None,
) -> CoveragePlan:
    """The plan as of the document's ``as_of`` (steps 1-6 of the module docstring)."""
    opts = options or PlanOptions()
    as_of = document.as_of
    tiers = {c.contact_id: c.tier for c in document.contacts}
    people = list(contacts)
    answers = list(matches)
    by_account = _eligible_by_account(people, tiers, answers, as_of, opts.fatigue_days)
    respondents = {a.id: a.respondents for a in document.accounts}
    ordered = sorted(
        (a for a in _first_of_each(accounts) if a.id in respondents),
        key=lambda a: (-a.revenue, a.id),
    )
    rates = tier_response_rates(people, tiers, answers, document.portfolio.response_rate)
    total = document.portfolio.total_revenue
    covered = document.portfolio.covered_revenue
    planned, skipped = _walk(ordered, respondents, by_account, rates, covered, total, opts)
    gaps = _tier_gaps(document, ordered, respondents, by_account, opts.top)
    return CoveragePlan(
        as_of=as_of,
        target=opts.target,
        coverage_now=document.portfolio.revenue_coverage,
        coverage_planned=_ratio(covered + sum(a.revenue for a in planned), total),
        coverage_expected=_ratio(covered + sum(a.revenue * a.chance for a in planned), total),
        accounts=planned,
        tier_gaps=gaps,
        skipped=skipped,
    )


def _first_of_each(accounts: Iterable[Account]) -> list[Account]:
    seen: dict[str, Account] = {}
    for account in accounts:
        seen.setdefault(account.id, account)
    return list(seen.values())


def _ratio(part: float, total: float) -> float | None:
    return part / total if total else None


def _walk(  # noqa: PLR0917  # the plan's inputs, passed on once from coverage_plan
    ordered: Sequence[Account],
    respondents: Mapping[str, int],
    by_account: Mapping[str, list[PlannedContact]],
    rates: Mapping[Tier, float],
    covered: float,
    total: float,
    opts: PlanOptions,
) -> tuple[list[PlannedAccount], list[tuple[str, str]]]:
    """Step 2: plan uncovered accounts from the largest down until the target is met."""
    planned: list[PlannedAccount] = []
    skipped: list[tuple[str, str]] = []
    reached = covered
    for account in ordered:
        if not total or reached / total >= opts.target:
            break
        if respondents[account.id] > 0 or account.revenue <= 0:
            continue
        chosen = pick_contacts(by_account.get(account.id, []), opts.per_account)
        if not chosen:
            skipped.append((account.id, "no_eligible_contact"))
            continue
        reached += account.revenue
        chance = account_chance([c.tier for c in chosen], rates)
        planned.append(
            PlannedAccount(
                account.id, account.name, account.revenue, reached / total, chance, chosen
            )
        )
    return planned, skipped


def _eligible_by_account(
    contacts: Iterable[Contact],
    tiers: Mapping[str, Tier],
    matches: Iterable[MatchedResponse],
    as_of: datetime,
    fatigue_days: int,
) -> dict[str, list[PlannedContact]]:
    """Step 3: per account, its contacts with an email and no answer in the fatigue window."""
    since = as_of - timedelta(days=fatigue_days)
    tired = {
        m.contact.id
        for m in matches
        if m.contact is not None and since <= m.response.submitted_at <= as_of
    }
    out: dict[str, list[PlannedContact]] = defaultdict(list)
    for contact in contacts:
        if _has_email(contact) and contact.id not in tired and contact.id in tiers:
            email = (contact.email or "").strip()
            out[contact.account_id].append(PlannedContact(contact.id, email, tiers[contact.id]))
    return out


def pick_contacts(eligible: Sequence[PlannedContact], limit: int) -> list[PlannedContact]:
    """Step 4: one per tier (executive, management, frontline), then the rest in tier
    order with ``unknown`` last; within a tier by the lowest contact id."""
    rank = {t: i for i, t in enumerate(PLAN_TIER_ORDER)}
    ordered = sorted(eligible, key=lambda c: (rank[c.tier], c.id))
    firsts: list[PlannedContact] = []
    for tier in _COUNTED_TIERS:
        first = next((c for c in ordered if c.tier == tier), None)
        if first is not None:
            firsts.append(first)
    rest = [c for c in ordered if c not in firsts]
    return (firsts + rest)[: max(limit, 0)]


def _tier_gaps(
    document: MetricsDocument,
    ordered: Sequence[Account],
    respondents: Mapping[str, int],
    by_account: Mapping[str, list[PlannedContact]],
    top: int,
) -> list[TierGap]:
    """Step 5: among the ``top`` covered accounts, one eligible contact per missing tier."""
    covered_tiers = {a.id: set(a.tiers_covered) for a in document.accounts}
    gaps: list[TierGap] = []
    for account in [a for a in ordered if respondents[a.id] > 0][: max(top, 0)]:
        missing = [t for t in _COUNTED_TIERS if t not in covered_tiers[account.id]]
        if not missing:
            continue
        eligible = sorted(by_account.get(account.id, []), key=lambda c: c.id)
        chosen: list[PlannedContact] = []
        for tier in missing:
            first = next((c for c in eligible if c.tier == tier), None)
            if first is not None:
                chosen.append(first)
        gaps.append(TierGap(account.id, missing, chosen))
    return gaps


def tier_response_rates(
    contacts: Iterable[Contact],
    tiers: Mapping[str, Tier],
    matches: Iterable[MatchedResponse],
    overall: float | None,
) -> dict[Tier, float]:
    """Step 6: ``r_t`` = counted respondents of tier ``t`` ÷ its contacts with an email;
    ``unknown`` takes the portfolio's overall response rate (``overall``)."""
    with_email: dict[Tier, int] = dict.fromkeys(_COUNTED_TIERS, 0)
    for contact in contacts:
        tier = tiers.get(contact.id)
        if tier in with_email and _has_email(contact):
            with_email[tier] += 1
    answered: dict[Tier, int] = dict.fromkeys(_COUNTED_TIERS, 0)
    for match in matches:
        if match.counted and match.contact is not None and match.tier in answered:
            answered[match.tier] += 1
    rates: dict[Tier, float] = {
        t: (answered[t] / with_email[t] if with_email[t] else 0.0) for t in _COUNTED_TIERS
    }
    rates["unknown"] = overall or 0.0
    return rates


def _has_email(contact: Contact) -> bool:
    """As the contract counts ``C``: an email that is not blank."""
    return bool(contact.email and contact.email.strip(" \t"))


def account_chance(tiers: Iterable[Tier], rates: Mapping[Tier, float]) -> float:
    """The chance that at least one planned contact answers: ``1 - Π(1 - r_t)``."""
    silent = 1.0
    for tier in tiers:
        silent *= 1.0 - rates[tier]
    return 1.0 - silent

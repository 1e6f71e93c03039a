"""One cycle's figures: match, count, tally per account, then the metrics document.

Pure: the same accounts, contacts, responses, ``as_of`` and config give the same
document, whatever order the inputs come in (sums run in the document's account
order). Built for size: one pass over the responses, dict lookups, a cached tier
per title, and integer tallies per account; revenue enters only at the end.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import structlog

from agent.core.contract import MetricsConfig
from agent.core.document import (
    AccountMetrics,
    ContactFigures,
    MetricsDocument,
    Unmatched,
    UnmatchedReason,
)
from agent.core.matching import Matcher
from agent.core.metrics import (
    Counted,
    add_account_drivers,
    at_risk,
    closed_in_sla,
    contact_coverage,
    driver_metrics,
    driver_name,
    health_score,
    health_status,
    is_overdue_detractor,
    latest_per_respondent,
    nps,
    nps_strict,
    portfolio_metrics,
    recency_score,
    tier_coverage,
    tier_misaligned,
    tier_nps,
    tiers_covered,
    upsell_candidate,
)
from agent.core.models import Account, Contact, Dropped, Rejected, Response, Tier, category_of
from agent.core.tiers import TierClassifier

__all__ = [
    "Computed",
    "Excluded",
    "MatchedResponse",
    "Portfolio",
    "Tally",
    "account_metrics",
    "compute_document",
    "compute_with_matches",
    "contact_figure",
    "left_out_matcher",
    "tally_counted",
    "unmatched_response",
    "without_gc",
]

log = structlog.get_logger(__name__)

_PROMOTER, _PASSIVE, _DETRACTOR = 0, 1, 2


class Tally:
    """Integer counts of one account's counted responses, filled in one pass."""

    __slots__ = (
        "closed_in_sla",
        "counts",
        "drivers",
        "executive_detractor",
        "last",
        "open",
        "overdue",
        "responded_contacts",
        "tiers",
    )

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.responded_contacts = 0
        self.tiers: dict[str, list[int]] = {}
        self.last: datetime | None = None
        self.open = 0
        self.overdue = 0
        self.closed_in_sla = 0
        self.executive_detractor = False
        self.drivers: dict[str | None, list[int]] = {}


class Portfolio:
    """The accounts (first of each id) and the contacts that belong to one of them."""

    def __init__(
        self, accounts: Iterable[Account], contacts: Iterable[Contact], config: MetricsConfig
    ) -> None:
        self.accounts: dict[str, Account] = {}
        for account in accounts:
            self.accounts.setdefault(account.id, account)
        known = self.accounts
        self.contacts = [c for c in contacts if c.account_id in known]
        classify = TierClassifier(config).tier_of
        self.tiers: list[Tier] = [classify(c.crm_tier, c.title) for c in self.contacts]
        self.with_email: dict[str, int] = dict.fromkeys(known, 0)
        with_email = self.with_email
        for contact in self.contacts:
            email = contact.email
            if email and email.strip(" \t"):
                with_email[contact.account_id] += 1


class MatchedResponse(NamedTuple):
    """A matched response, where it matched, and whether it is one of the counted ones.

    The rules read these as they are (``agent.rules.facts.ResponseFacts``):
    ``loop_closed_at`` overrides the response's own field when the loop was closed
    elsewhere (a CRM field); ``None``: ``response.loop_closed_at`` holds.

    A named tuple, not a frozen dataclass: a cycle builds one per stored response (a
    million at 50,000 accounts), and a tuple is built in a quarter of the time."""

    response: Response
    account: Account
    contact: Contact | None
    tier: Tier
    counted: bool
    loop_closed_at: datetime | None = None

    @property
    def closed_at(self) -> datetime | None:
        """When the detractor's loop was closed, from whichever source knows."""
        return self.loop_closed_at or self.response.loop_closed_at


@dataclass(frozen=True, slots=True)
class Excluded:
    """What reading the CRM left out: rows not used (``dropped``), and the accounts that
    were rejected with their contacts, so that their responses are reported as
    ``account_rejected`` rather than ``no_match``."""

    dropped: list[Dropped] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Computed:
    """One cycle's figures and what the alert rules need beside them.

    Weakly referable: what only remembers which computation it saw (a deciding job's
    last run) does not keep a million matches alive beside the next computation's."""

    document: MetricsDocument
    accounts: list[Account]
    matches: list[MatchedResponse]


def compute_document(
    accounts: Iterable[Account],
    contacts: Iterable[Contact],
    responses: Iterable[Response],
    *,
    as_of: datetime | None = None,
    config: MetricsConfig | None = None,
    rejected: Iterable[Rejected] = (),
    excluded: Excluded | None = None,
    contact_figures: bool = True,
) -> MetricsDocument:
    """The metrics document of DOMAIN.md for one cycle (``as_of`` defaults to now, UTC).

    ``rejected`` (from reading the inputs) and ``excluded.dropped`` are passed through
    into the document. Without ``contact_figures`` the document's ``contacts`` (not part
    of the JSON document, only of write-back) is left empty.
    Accounts repeating an id after the first and contacts of unknown accounts are
    left out; responses matching nothing are listed in ``unmatched``.
    """
    document, _ = _run(
        accounts,
        contacts,
        responses,
        as_of,
        config,
        rejected,
        excluded or Excluded(),
        keep=False,
        contact_figures=contact_figures,
    )
    return document


def compute_with_matches(
    accounts: Iterable[Account],
    contacts: Iterable[Contact],
    responses: Iterable[Response],
    *,
    as_of: datetime | None = None,
    config: MetricsConfig | None = None,
    rejected: Iterable[Rejected] = (),
    excluded: Excluded | None = None,
    contact_figures: bool = True,
) -> tuple[MetricsDocument, list[MatchedResponse]]:
    """``compute_document`` plus every matched response (for per-response alert rules)."""
    return _run(
        accounts,
        contacts,
        responses,
        as_of,
        config,
        rejected,
        excluded or Excluded(),
        keep=True,
        contact_figures=contact_figures,
    )


def _run(  # noqa: PLR0917  # the public signatures' arguments, passed on once
    accounts: Iterable[Account],
    contacts: Iterable[Contact],
    responses: Iterable[Response],
    as_of: datetime | None,
    config: MetricsConfig | None,
    rejected: Iterable[Rejected],
    excluded: Excluded,
    *,
    keep: bool,
    contact_figures: bool = True,
) -> tuple[MetricsDocument, list[MatchedResponse]]:
    with without_gc():
        document, matches = _compute(
            accounts,
            contacts,
            responses,
            as_of=_aware(as_of or datetime.now(UTC)),
            config=config or MetricsConfig(),
            rejected=rejected,
            excluded=excluded,
            keep=keep,
            contact_figures=contact_figures,
        )
    log.info(
        "metrics.computed",
        accounts=len(document.accounts),
        contact_figures=len(document.contacts),
        counted=sum(a.respondents for a in document.accounts),
        unmatched=len(document.unmatched),
        rejected=len(document.rejected),
    )
    return document, matches


@contextmanager
def without_gc() -> Iterator[None]:
    """Pause the cycle collector: a cycle allocates millions of acyclic objects, and
    the collector's repeated scans of them cost about a third of the time.

    The collector is the process's, and threads pause it at once (the scheduler's job
    for seconds, the answers worker's computation of one account meanwhile): it is on
    again only once the last of them is done, and only if it was on before the first."""
    _PAUSE.enter()
    try:
        yield
    finally:
        _PAUSE.leave()


class _CollectorPause:
    """How many ``without_gc`` blocks are open, in any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._resume = False

    def enter(self) -> None:
        with self._lock:
            if self._open == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._open += 1

    def leave(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0 and self._resume:
                gc.enable()


_PAUSE = _CollectorPause()


def _compute(
    accounts: Iterable[Account],
    contacts: Iterable[Contact],
    responses: Iterable[Response],
    *,
    as_of: datetime,
    config: MetricsConfig,
    rejected: Iterable[Rejected],
    excluded: Excluded,
    keep: bool,
    contact_figures: bool = True,
) -> tuple[MetricsDocument, list[MatchedResponse]]:
    portfolio = Portfolio(accounts, contacts, config)
    matcher = Matcher(
        list(portfolio.accounts.values()), portfolio.contacts, config.free_mail_domains
    )
    left_out = left_out_matcher(excluded, config)
    unmatched: list[Unmatched] = []
    matched: Iterable[Counted] = _match(responses, matcher, unmatched, left_out)
    if keep:
        matched = list(matched)
    latest = latest_per_respondent(matched, as_of, config.window_days)
    tallies = tally_counted(latest.values(), portfolio.tiers, as_of, config)
    ordered = sorted(portfolio.accounts.values(), key=lambda a: (-a.revenue, a.id))
    empty = Tally()
    figures = [
        account_metrics(a, tallies.get(a.id, empty), portfolio.with_email[a.id], as_of, config)
        for a in ordered
    ]
    drivers: dict[str | None, list[float]] = {}
    for account in ordered:
        tally = tallies.get(account.id)
        if tally is not None:
            add_account_drivers(drivers, tally.drivers, account.revenue, sum(tally.counts))
    document = MetricsDocument(
        as_of=as_of,
        portfolio=portfolio_metrics(
            figures,
            responded_contacts=sum(t.responded_contacts for t in tallies.values()),
            detractors_closed=sum(t.closed_in_sla for t in tallies.values()),
        ),
        accounts=figures,
        drivers=driver_metrics(drivers),
        unmatched=sorted(unmatched, key=lambda u: (u.response_id, u.email or "")),
        rejected=list(rejected),
        contacts=_contact_figures(portfolio, latest) if contact_figures else [],
        dropped=list(excluded.dropped),
    )
    return document, (_matches(matched, latest, portfolio) if keep else [])


def _matches(
    matched: Iterable[Counted], latest: Mapping[Hashable, Counted], portfolio: Portfolio
) -> list[MatchedResponse]:
    counted = {id(c.response) for c in latest.values()}
    out: list[MatchedResponse] = []
    for response, account_id, index in matched:
        contact = None if index is None else portfolio.contacts[index]
        tier: Tier = "unknown" if index is None else portfolio.tiers[index]
        account = portfolio.accounts[account_id]
        out.append(MatchedResponse(response, account, contact, tier, id(response) in counted))
    return out


def _aware(moment: datetime) -> datetime:
    """A moment without a zone is read as UTC, like every timestamp of the contract."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _match(
    responses: Iterable[Response],
    matcher: Matcher,
    unmatched: list[Unmatched],
    left_out: Matcher | None = None,
) -> Iterator[Counted]:
    """Every matched response with its account and contact; the rest go to ``unmatched``
    (``account_rejected`` when it would have matched an account whose row was rejected)."""
    match = matcher.match
    counted = tuple.__new__  # Counted(...) without the named tuple's Python-level __new__
    for response in responses:
        account_id, contact, reason = match(response.email, response.account_hint)
        if account_id is None:
            unmatched.append(unmatched_response(response, reason, left_out))
        else:
            yield counted(Counted, (response, account_id, contact))


def left_out_matcher(excluded: Excluded, config: MetricsConfig) -> Matcher | None:
    """A matcher over the rejected accounts and their contacts (None: no account was
    rejected), to tell their responses apart from unknown senders."""
    if not excluded.accounts:
        return None
    return Matcher(excluded.accounts, excluded.contacts, config.free_mail_domains)


def unmatched_response(
    response: Response, reason: UnmatchedReason | None, left_out: Matcher | None
) -> Unmatched:
    """A response the portfolio did not match (``reason``: the matcher's), listed with
    ``account_rejected`` when it would have matched a rejected account."""
    if (
        left_out is not None
        and left_out.match(response.email, response.account_hint).account_id is not None
    ):
        reason = "account_rejected"
    return Unmatched(response.response_id, response.email, reason or "no_match")


def tally_counted(
    counted: Iterable[Counted], tiers: Sequence[Tier], as_of: datetime, config: MetricsConfig
) -> dict[str, Tally]:
    """Per account, the counts every per-account figure is computed from."""
    tallies: dict[str, Tally] = {}
    sla = config.loop_sla_hours
    for response, account_id, contact in counted:
        tally = tallies.get(account_id)
        if tally is None:
            tally = tallies[account_id] = Tally()
        score = response.score
        cat = _PROMOTER if score >= 9 else _PASSIVE if score >= 7 else _DETRACTOR
        tally.counts[cat] += 1
        if contact is not None:
            tally.responded_contacts += 1
            tier = tiers[contact]
            if tier != "unknown":
                per_tier = tally.tiers.get(tier)
                if per_tier is None:
                    per_tier = tally.tiers[tier] = [0, 0, 0]
                per_tier[cat] += 1
                if tier == "executive" and cat == _DETRACTOR:
                    tally.executive_detractor = True
        submitted = response.submitted_at
        last = tally.last
        if last is None or submitted > last:
            tally.last = submitted
        if cat == _DETRACTOR:  # open (and maybe overdue), or closed within the SLA
            closed = response.loop_closed_at
            if closed is None:
                tally.open += 1
                if is_overdue_detractor(score, closed, submitted, as_of, sla):
                    tally.overdue += 1
            elif closed_in_sla(submitted, closed, sla):
                tally.closed_in_sla += 1
        driver = driver_name(response.driver)
        per_driver = tally.drivers.get(driver)
        if per_driver is None:
            per_driver = tally.drivers[driver] = [0, 0, 0]
        per_driver[cat] += 1
    return tallies


def account_metrics(
    account: Account, tally: Tally, contacts: int, as_of: datetime, config: MetricsConfig
) -> AccountMetrics:
    p, n, d = tally.counts
    respondents = p + n + d
    covered = tiers_covered({t: sum(c) for t, c in tally.tiers.items()})
    by_tier = tier_nps({t: (c[0], c[1], c[2]) for t, c in tally.tiers.items()})
    account_nps = nps(p, d, respondents)
    coverage = contact_coverage(tally.responded_contacts, contacts)
    misaligned = tier_misaligned(by_tier, config.misalignment_spread)
    recency = recency_score(tally.last, as_of, config)
    health = health_score(
        account_nps,
        coverage,
        tier_coverage(covered),
        recency,
        misaligned=misaligned,
        config=config.health,
    )
    status = health_status(health, config.health)
    return AccountMetrics(
        id=account.id,
        name=account.name,
        revenue=float(account.revenue),
        contacts=contacts,
        respondents=respondents,
        promoters=p,
        passives=n,
        detractors=d,
        nps=account_nps,
        nps_strict=nps_strict(p, d, respondents, contacts, tally.responded_contacts),
        contact_coverage=coverage,
        tiers_covered=covered,
        tier_coverage=tier_coverage(covered),
        tier_nps=by_tier,
        tier_misaligned=misaligned,
        last_response_at=tally.last,
        recency_score=recency,
        health_score=health,
        health_status=status,
        at_risk=at_risk(status, tally.executive_detractor),
        open_detractors=tally.open,
        overdue_detractors=tally.overdue,
        upsell_candidate=upsell_candidate(
            account_nps, account.revenue, account.revenue_potential, config
        ),
    )


def _contact_figures(
    portfolio: Portfolio, latest: Mapping[Hashable, Counted]
) -> list[ContactFigures]:
    """Tier and counted answer of every contact that has an email or a known tier."""
    out: list[ContactFigures] = []
    for index in range(len(portfolio.contacts)):
        figure = contact_figure(portfolio, index, latest)
        if figure is not None:
            out.append(figure)
    return out


def contact_figure(
    portfolio: Portfolio, index: int, latest: Mapping[Hashable, Counted]
) -> ContactFigures | None:
    """One contact's tier and counted answer; None without an email and a known tier."""
    contact = portfolio.contacts[index]
    tier = portfolio.tiers[index]
    has_email = bool(contact.email and contact.email.strip(" \t"))
    if not has_email and tier == "unknown":
        return None
    counted = latest.get(index)
    if counted is None:
        return ContactFigures(contact.id, contact.account_id, tier)
    response = counted.response
    return ContactFigures(
        contact_id=contact.id,
        account_id=contact.account_id,
        tier=tier,
        last_score=response.score,
        nps_category=category_of(response.score),
        last_response_at=response.submitted_at,
    )

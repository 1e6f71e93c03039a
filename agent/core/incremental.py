"""The cycle's figures kept up to date: only the accounts a change touches are recomputed.

``compute_with_matches`` recomputes a whole portfolio; ``Figures`` holds the same
result in per-account parts and refreshes the parts a change reaches:

- new responses: the accounts they match;
- a CRM change: the accounts whose record, contacts or matched responses changed
  (every response is matched again against the new portfolio, which is cheap beside
  counting, and the matches are compared);
- a new ``as_of``: the accounts with a response entering or leaving the window or a
  detractor crossing the SLA between the two instants (``crossings``), and the
  accounts whose recency score moved (their figures only);
- the CRM's rejected accounts (``set_left_out``): the reasons of the unmatched
  responses only (``account_rejected`` or not), no figure.

A respondent answering without a contact is known by email across the portfolio,
so an account is always recomputed together with every account sharing such a
respondent. Sums over accounts (the portfolio block, the drivers) are taken afresh
in the document's order from the per-account parts, so the result is exactly the one
``compute_with_matches`` gives for the same inputs (a property test compares them).

A ``Figures`` is changed in place by ``add_responses``, ``set_crm``, ``set_left_out``
and ``refresh``. One that other threads read (the cycle publishes its last computed
figures for the answers path) is never changed again: the next refresh works on a
``clone()``, which copies the containers a change mutates and shares the rest, the
per-account indexes copy-on-write. ``view(..., new=...)`` places answers the figures
do not hold yet in a private layer over them, so a reader never writes either.
"""

from __future__ import annotations

import bisect
import copy
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from operator import attrgetter

from agent.core.compute import (
    Excluded,
    MatchedResponse,
    Portfolio,
    Tally,
    account_metrics,
    contact_figure,
    left_out_matcher,
    tally_counted,
    unmatched_response,
    without_gc,
)
from agent.core.contract import MetricsConfig
from agent.core.document import AccountMetrics, ContactFigures, MetricsDocument, Unmatched
from agent.core.matching import Matcher
from agent.core.metrics import (
    Counted,
    add_account_drivers,
    driver_metrics,
    latest_per_respondent,
    portfolio_metrics,
    recency_score,
)
from agent.core.models import Account, Contact, Dropped, Rejected, Response, sort_as_stored

__all__ = ["Figures", "RefreshReport"]

_Key = tuple[str, str]
_NEVER = float("inf")
_new_counted = tuple.__new__  # Counted(...) without the named tuple's Python __new__


#: A response's key in the indexes: (source, id).
_key: Callable[[Response], _Key] = attrgetter("source", "response_id")


#: The store's order of responses: submitted, then source, then id.
_order_key = attrgetter("submitted_at", "source", "response_id")


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one refresh recomputed: ``accounts`` tallied again, ``rescored`` figures only;
    ``changed``: the ids of both (every other account's figures are as they were)."""

    full: bool
    accounts: int
    rescored: int
    changed: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Part:
    """One account's share of the document, and the ``as_of`` range it holds for."""

    tally: Tally
    metrics: AccountMetrics
    #: The nearest crossing instants (POSIX seconds) at or before and at or after ``as_of``.
    before: float
    after: float
    #: The account's counted responses (each respondent's latest in the window): the
    #: objects ``_matched`` holds, so a part adds a reference each, not an ``id()``.
    counted: tuple[Response, ...] = ()


class Figures:
    """The metrics document of a portfolio, refreshed in parts as the data changes."""

    def __init__(self, config: MetricsConfig) -> None:
        self.config = config
        self.as_of: datetime | None = None
        self._portfolio = Portfolio((), (), config)
        self._matcher = Matcher([], [], config.free_mail_domains)
        #: The CRM's rejected accounts and their contacts, and a matcher over them.
        self._excluded: tuple[list[Account], list[Contact]] = ([], [])
        self._left_out: Matcher | None = None
        self._ordered: list[Response] = []
        self._matched: MutableMapping[_Key, Counted] = {}
        #: Whether ``_matched`` holds its responses in ``_ordered``'s order (as placed
        #: by a load), so the matches are read from it without a key per response.
        self._in_order = True
        self._unmatched: MutableMapping[_Key, Unmatched] = {}
        self._by_account: MutableMapping[str, list[_Key]] = {}
        self._by_email: MutableMapping[str, set[str]] = {}
        #: Whether the lists and sets of the two indexes above may be shared with a
        #: clone; then only those named in ``_own_keys`` / ``_own_emails`` are ours.
        self._shared = False
        self._own_keys: set[str] = set()
        self._own_emails: set[str] = set()
        #: Whether the response indexes (``_ordered``, ``_matched``, ``_unmatched``,
        #: ``_by_account``, ``_by_email``) are the very containers a clone shares with
        #: its original: each copied by the first change that places a response
        #: (``_own_indexes``), so a refresh that only moves the instant copies none.
        self._indexes_shared = False
        self._contacts_of: dict[str, list[int]] = {}
        self._parts: dict[str, _Part] = {}
        self._contact_figures: dict[str, list[ContactFigures | None]] = {}
        self._pending: set[str] = set()

    def clone(self) -> Figures:
        """A copy to change while this one is read elsewhere: the containers every
        refresh mutates in place are copied; the response indexes (a million entries at
        50,000 accounts) when a response is first placed in either (``_own_indexes``),
        their per-account key lists and the respondents' account sets copy-on-write, in
        both; the rest (responses, records, parts) is shared, as nothing changes those
        in place."""
        twin = copy.copy(self)
        twin._parts = dict(self._parts)
        twin._contact_figures = dict(self._contact_figures)
        twin._pending = set(self._pending)
        for figures in (self, twin):
            figures._shared = True
            figures._own_keys, figures._own_emails = set(), set()
            figures._indexes_shared = True
        return twin

    def _own_indexes(self) -> None:
        """Before a response is placed: the response indexes become this object's own."""
        if not self._indexes_shared:
            return
        self._ordered = list(self._ordered)
        self._matched = dict(self._matched)
        self._unmatched = dict(self._unmatched)
        self._by_account = dict(self._by_account)
        self._by_email = dict(self._by_email)
        self._indexes_shared = False

    # -- changes ------------------------------------------------------------------------

    def load(
        self,
        accounts: Iterable[Account],
        contacts: Iterable[Contact],
        responses: Iterable[Response],
        *,
        stored_order: bool = False,
    ) -> None:
        """Start over from a whole portfolio and every stored response (the rejected
        accounts of ``set_left_out`` are kept).

        ``stored_order``: ``responses`` is a list already in the store's order (as
        ``StateStore.load_responses`` gives it); it is taken over as it is, not sorted
        again (the caller makes no further use of it)."""
        left_out = self._excluded, self._left_out
        self.__init__(self.config)  # type: ignore[misc]  # a fresh start, same config
        self._excluded, self._left_out = left_out
        self._set_portfolio(Portfolio(accounts, contacts, self.config))
        self._pending = set(self._portfolio.accounts)
        if stored_order and isinstance(responses, list):
            ordered = responses
        else:
            ordered = list(responses)
            sort_as_stored(ordered)
        self._ordered = ordered
        for response in ordered:
            self._place(response)

    def add_responses(self, responses: Iterable[Response]) -> None:
        """New stored responses (keys not seen before); their accounts are recomputed."""
        self._own_indexes()
        for response in responses:
            if _key(response) in self._matched or _key(response) in self._unmatched:
                continue
            bisect.insort(self._ordered, response, key=_order_key)
            self._in_order = False
            account_id = self._place(response)
            if account_id is not None:
                self._pending.add(account_id)

    def set_crm(self, accounts: Iterable[Account], contacts: Iterable[Contact]) -> None:
        """The CRM's accounts and contacts now; accounts whose inputs changed are recomputed.

        A record's ``crm_values`` (what the CRM holds in the agent's own fields) are no
        input of any figure: a record that differs only there changes nothing here (the
        records themselves are still replaced, for the rules that read them). When no
        account's id or domains and no contact's id, account or email changed, every
        response matches as before and is not matched again."""
        old = self._portfolio
        old_contacts = {a: [old.contacts[i] for i in ix] for a, ix in self._contacts_of.items()}
        old_tiers = {a: [old.tiers[i] for i in ix] for a, ix in self._contacts_of.items()}
        old_matched, old_by_account, old_by_email = self._matched, self._by_account, self._by_email
        new = Portfolio(accounts, contacts, self.config)
        same = _same_matching(old, new)
        if same:
            # every email, domain and contact position as before: the matcher and the
            # contacts' places answer alike, and are kept (the published figures share
            # them: a new matcher beside theirs was about 70 MB at 500,000 contacts)
            self._portfolio = new
        else:
            self._set_portfolio(new)
        changed = set(old.accounts).symmetric_difference(new.accounts)
        for account_id, account in new.accounts.items():
            ix = self._contacts_of.get(account_id, [])
            before = old.accounts.get(account_id)
            if (
                before is None
                or _account_inputs(before) != _account_inputs(account)
                or list(map(_contact_inputs, old_contacts.get(account_id, [])))
                != [_contact_inputs(new.contacts[i]) for i in ix]
                or old_tiers.get(account_id, []) != [new.tiers[i] for i in ix]
            ):
                changed.add(account_id)
        if same:
            # every response matches where it did (contact positions included)
            self._pending |= changed
            return
        # new dicts (the order of responses, maybe still shared, is only read here)
        self._matched, self._unmatched = {}, {}
        self._by_account, self._by_email = {}, {}
        self._shared = False  # new indexes: ours alone
        self._in_order = True
        for response in self._ordered:
            self._place(response)
        for key, now in self._matched.items():
            before_match = old_matched.get(key)
            if before_match is None or before_match.account_id != now.account_id:
                changed.add(now.account_id)
                if before_match is not None:
                    changed.add(before_match.account_id)
        changed.update(c.account_id for k, c in old_matched.items() if k not in self._matched)
        # an account that shared a contact-less respondent with a changed one (as matched
        # before the change) may count another of that respondent's answers now
        changed = _closure(changed, old_by_account, old_matched, old_by_email)
        self._pending |= {a for a in changed if a in new.accounts}
        for gone in set(self._parts) - set(new.accounts):
            del self._parts[gone]
            self._contact_figures.pop(gone, None)

    def set_left_out(self, excluded: Excluded) -> None:
        """The accounts the CRM rejected and their contacts (``excluded``): a response that
        matches no account but one of these is unmatched as ``account_rejected``.

        No figure rests on them, so only the unmatched responses are looked at again.
        """
        records = (list(excluded.accounts), list(excluded.contacts))
        if records == self._excluded:
            return
        self._excluded = records
        self._left_out = left_out_matcher(excluded, self.config)
        self._own_indexes()
        match, unmatched = self._matcher.match, self._unmatched
        for response in self._ordered:
            key = _key(response)
            if key in unmatched:
                reason = match(response.email, response.account_hint).reason
                unmatched[key] = unmatched_response(response, reason, self._left_out)

    # -- the document -------------------------------------------------------------------

    def refresh(self, as_of: datetime) -> RefreshReport:
        """Bring every part to ``as_of``; recompute what changed since the last refresh."""
        as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        with without_gc():
            full = self.as_of is None or len(self._pending) == len(self._portfolio.accounts)
            due = set(self._pending)
            if self.as_of is not None and as_of != self.as_of:
                due |= self._crossing(self.as_of, as_of)
            recomputed = self._recompute(due, as_of)
            rescored = self._rescore(as_of, skip=recomputed)
            # only now is every part as of ``as_of``: an error above leaves the
            # pending accounts and the old instant, and the next refresh redoes them
            self.as_of = as_of
            self._pending.clear()
        return RefreshReport(
            full=full,
            accounts=len(recomputed),
            rescored=len(rescored),
            changed=frozenset(recomputed | rescored),
        )

    def document(
        self, rejected: Iterable[Rejected] = (), dropped: Iterable[Dropped] = ()
    ) -> MetricsDocument:
        """The metrics document as of the last refresh (``rejected`` and ``dropped``: the
        input rows reading left out, passed through)."""
        if self.as_of is None:
            raise RuntimeError("refresh() the figures before asking for the document")
        ordered = sorted(self._portfolio.accounts.values(), key=lambda a: (-a.revenue, a.id))
        parts = [self._parts[a.id] for a in ordered]
        drivers: dict[str | None, list[float]] = {}
        for account, part in zip(ordered, parts, strict=True):
            if part.metrics.respondents:
                add_account_drivers(
                    drivers, part.tally.drivers, account.revenue, sum(part.tally.counts)
                )
        return MetricsDocument(
            as_of=self.as_of,
            portfolio=portfolio_metrics(
                [p.metrics for p in parts],
                responded_contacts=sum(p.tally.responded_contacts for p in parts),
                detractors_closed=sum(p.tally.closed_in_sla for p in parts),
            ),
            accounts=[p.metrics for p in parts],
            drivers=driver_metrics(drivers),
            unmatched=sorted(
                self._unmatched.values(), key=lambda u: (u.response_id, u.email or "")
            ),
            rejected=list(rejected),
            contacts=list(self._contacts()),
            dropped=list(dropped),
        )

    def accounts(self) -> list[Account]:
        """The portfolio's accounts (the first of each id), in id order."""
        return sorted(self._portfolio.accounts.values(), key=lambda a: a.id)

    def matches(self, accounts: Iterable[str] | None = None) -> list[MatchedResponse]:
        """Every matched response (of ``accounts`` only, when given), in the store's order."""
        if self.as_of is None:
            raise RuntimeError("refresh() the figures before asking for the matches")
        items: Iterable[Counted | None]
        if accounts is None and self._in_order:
            items = self._matched.values()
        else:
            keys: Iterable[_Key] = map(_key, self._ordered)
            if accounts is not None:
                wanted = {k for a in accounts for k in self._by_account.get(a, ())}
                keys = (k for k in keys if k in wanted)
            items = map(self._matched.get, keys)
        counted = self._counted_ids(accounts)
        accounts_by_id, contacts, tiers = (
            self._portfolio.accounts,
            self._portfolio.contacts,
            self._portfolio.tiers,
        )
        new = tuple.__new__  # MatchedResponse(...) without the named tuple's Python __new__
        out: list[MatchedResponse] = []
        for item in items:
            if item is None:
                continue
            response, account_id, index = item
            contact, tier = (None, "unknown") if index is None else (contacts[index], tiers[index])
            account = accounts_by_id[account_id]
            counts = id(response) in counted
            out.append(new(MatchedResponse, (response, account, contact, tier, counts, None)))
        return out

    def view(
        self,
        responses: Sequence[Response],
        as_of: datetime,
        *,
        new: Sequence[Response] = (),
    ) -> tuple[dict[str, AccountMetrics], list[MatchedResponse]]:
        """As of ``as_of``: the figures of the accounts the stored ``responses`` matched
        (with every account sharing a respondent with them), and those responses matched.

        Nothing else is recomputed and the parts stay as they are: this is the path of
        one new answer, which must not wait for the portfolio. ``new``: stored responses
        these figures do not hold yet (``responses`` among them, as a rule); they are
        placed in a private layer for this view alone, so this object is not changed
        and other threads may read it meanwhile.
        """
        source = self._layered(new) if new else self
        return source._view(responses, as_of)

    def _layered(self, responses: Sequence[Response]) -> Figures:
        """These figures with ``responses`` placed too, in copy-on-write layers over the
        indexes (this object unchanged); read only, never refreshed."""
        layer = copy.copy(self)
        layer._matched = ChainMap({}, self._matched)
        layer._unmatched = ChainMap({}, self._unmatched)
        layer._by_account = ChainMap({}, self._by_account)
        layer._by_email = ChainMap({}, self._by_email)
        layer._shared, layer._own_keys, layer._own_emails = True, set(), set()
        layer._in_order = False
        for response in responses:
            key = _key(response)
            if key not in layer._matched and key not in layer._unmatched:
                layer._place(response)
        return layer

    def _view(
        self, responses: Sequence[Response], as_of: datetime
    ) -> tuple[dict[str, AccountMetrics], list[MatchedResponse]]:
        as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        touched = {a for r in responses if (a := self.account_of(r)) is not None}
        accounts = self._closure(touched)
        counted = [self._matched[k] for a in accounts for k in self._by_account.get(a, ())]
        latest = latest_per_respondent(counted, as_of, self.config.window_days)
        tallies = tally_counted(latest.values(), self._portfolio.tiers, as_of, self.config)
        metrics = {a: self._metrics(a, tallies.get(a) or Tally(), as_of) for a in accounts}
        chosen = {id(c.response) for c in latest.values()}
        portfolio = self._portfolio
        matches: list[MatchedResponse] = []
        for response in responses:
            item = self._matched.get(_key(response))
            if item is None:
                continue
            _, account_id, index = item
            matches.append(
                MatchedResponse(
                    item.response,
                    portfolio.accounts[account_id],
                    None if index is None else portfolio.contacts[index],
                    "unknown" if index is None else portfolio.tiers[index],
                    id(item.response) in chosen,
                )
            )
        return metrics, matches

    def account_of(self, response: Response) -> str | None:
        """The account a stored response matched, if any."""
        item = self._matched.get(_key(response))
        return None if item is None else item.account_id

    # -- inside -------------------------------------------------------------------------

    def _set_portfolio(self, portfolio: Portfolio) -> None:
        self._portfolio = portfolio
        self._matcher = Matcher(
            list(portfolio.accounts.values()), portfolio.contacts, self.config.free_mail_domains
        )
        self._contacts_of = {a: [] for a in portfolio.accounts}
        for index, contact in enumerate(portfolio.contacts):
            self._contacts_of[contact.account_id].append(index)

    def _place(self, response: Response) -> str | None:
        """Match one response and index it; returns its account (None: unmatched)."""
        key = _key(response)
        account_id, contact, reason = self._matcher.match(response.email, response.account_hint)
        if account_id is None:
            self._unmatched[key] = unmatched_response(response, reason, self._left_out)
            return None
        self._matched[key] = _new_counted(Counted, (response, account_id, contact))
        keys = self._by_account.get(account_id)
        if keys is None or self._shared:  # the common case, a list of our own, inline
            keys = self._keys_of(account_id)
        keys.append(key)
        if contact is None:
            email = (response.email or "").strip(" \t").lower()
            if email:
                self._accounts_of(email).add(account_id)
        return account_id

    def _keys_of(self, account_id: str) -> list[_Key]:
        """The account's response keys, a list this object may append to."""
        keys = self._by_account.get(account_id)
        if keys is not None and (not self._shared or account_id in self._own_keys):
            return keys
        self._by_account[account_id] = keys = [] if keys is None else list(keys)
        if self._shared:
            self._own_keys.add(account_id)
        return keys

    def _accounts_of(self, email: str) -> set[str]:
        """The accounts a contact-less respondent answered for, a set this object may add to."""
        accounts = self._by_email.get(email)
        if accounts is not None and (not self._shared or email in self._own_emails):
            return accounts
        self._by_email[email] = accounts = set() if accounts is None else set(accounts)
        if self._shared:
            self._own_emails.add(email)
        return accounts

    def _closure(self, accounts: set[str]) -> set[str]:
        """``accounts`` and every account sharing a contact-less respondent with one of them."""
        return _closure(accounts, self._by_account, self._matched, self._by_email)

    def _crossing(self, old: datetime, new: datetime) -> set[str]:
        """Accounts whose counted set or overdue count may differ between two instants."""
        lo, hi = sorted((old.timestamp(), new.timestamp()))
        forward = new > old
        return {
            a
            for a, part in self._parts.items()
            if (part.after <= hi if forward else part.before >= lo)
        }

    def _recompute(self, due: set[str], as_of: datetime) -> set[str]:
        """Recompute the parts of ``due`` (and of the accounts sharing a respondent with
        them), each with its counted responses; returns those accounts."""
        accounts = {a for a in due if a in self._portfolio.accounts}
        if len(accounts) < len(self._portfolio.accounts):  # every account: no closure to take
            accounts = self._closure(accounts)
        counted: Sequence[Counted]
        if len(accounts) == len(self._portfolio.accounts):  # every matched response
            counted = list(self._matched.values())
        else:
            counted = [self._matched[k] for a in accounts for k in self._by_account.get(a, ())]
        latest = latest_per_respondent(counted, as_of, self.config.window_days)
        tallies = tally_counted(latest.values(), self._portfolio.tiers, as_of, self.config)
        bounds = self._bounds(counted, as_of)
        chosen: dict[str, list[Response]] = {}
        for latest_one in latest.values():
            held = chosen.get(latest_one.account_id)
            if held is None:
                held = chosen[latest_one.account_id] = []
            held.append(latest_one.response)
        for account_id in accounts:
            tally = tallies.get(account_id) or Tally()
            before, after = bounds.get(account_id, (-_NEVER, _NEVER))
            self._parts[account_id] = _Part(
                tally,
                self._metrics(account_id, tally, as_of),
                before,
                after,
                tuple(chosen.get(account_id, ())),
            )
            self._contact_figures[account_id] = [
                contact_figure(self._portfolio, index, latest)
                for index in self._contacts_of.get(account_id, ())
            ]
        return accounts

    def _rescore(self, as_of: datetime, *, skip: set[str]) -> set[str]:
        """Figures again where only the recency score moved (the tally holds); returns
        those accounts."""
        moved: dict[str, _Part] = {}
        for account_id, part in self._parts.items():
            if account_id in skip or part.tally.last is None:
                continue
            if recency_score(part.tally.last, as_of, self.config) != part.metrics.recency_score:
                # a new part: a clone shares the old one with the figures it came from
                moved[account_id] = replace(
                    part, metrics=self._metrics(account_id, part.tally, as_of)
                )
        self._parts.update(moved)
        return set(moved)

    def _metrics(self, account_id: str, tally: Tally, as_of: datetime) -> AccountMetrics:
        portfolio = self._portfolio
        return account_metrics(
            portfolio.accounts[account_id],
            tally,
            portfolio.with_email[account_id],
            as_of,
            self.config,
        )

    def _bounds(
        self, counted: Sequence[Counted], as_of: datetime
    ) -> dict[str, tuple[float, float]]:
        """Per account, the nearest instants around ``as_of`` where a response enters or
        leaves the window or an open detractor becomes overdue."""
        now = as_of.timestamp()
        window = timedelta(days=self.config.window_days).total_seconds()
        sla = timedelta(hours=self.config.loop_sla_hours).total_seconds()
        bounds: dict[str, tuple[float, float]] = {}
        never = (-_NEVER, _NEVER)
        for response, account_id, _ in counted:
            submitted = response.submitted_at.timestamp()
            before, after = bounds.get(account_id, never)
            for point in (
                (submitted, submitted + window, submitted + sla)
                if response.score <= 6 and response.loop_closed_at is None
                else (submitted, submitted + window)
            ):
                if point <= now and point > before:
                    before = point
                if point >= now and point < after:
                    after = point
            bounds[account_id] = (before, after)
        return bounds

    def _contacts(self) -> Iterator[ContactFigures]:
        """Contact figures in the portfolio's contact order."""
        position: dict[str, int] = {}
        for contact in self._portfolio.contacts:
            account_id = contact.account_id
            k = position.get(account_id, 0)
            position[account_id] = k + 1
            figure = self._contact_figures[account_id][k]
            if figure is not None:
                yield figure

    def _counted_ids(self, accounts: Iterable[str] | None) -> set[int]:
        """``id()`` of each counted response (of ``accounts``, when given)."""
        if accounts is None and not self._pending and self.as_of is not None:
            # every part as of ``as_of`` holds its counted responses: a refresh that
            # recomputed a few accounts need not count a million responses again
            return {id(r) for part in self._parts.values() for r in part.counted}
        chosen = set(self._parts) if accounts is None else self._closure(set(accounts))
        keys = [k for a in chosen for k in self._by_account.get(a, ())]
        latest = latest_per_respondent(
            [self._matched[k] for k in keys],
            self.as_of or datetime.now(UTC),
            self.config.window_days,
        )
        return {id(c.response) for c in latest.values()}


def _account_inputs(account: Account) -> tuple[object, ...]:
    """An account as the figures read it: everything but ``crm_values``."""
    return (
        account.id,
        account.name,
        account.domains,
        account.revenue,
        account.revenue_potential,
        account.owner_email,
        account.attributes,
    )


def _contact_inputs(contact: Contact) -> tuple[object, ...]:
    """A contact as the figures read it: everything but ``crm_values``."""
    return (
        contact.id,
        contact.account_id,
        contact.email,
        contact.name,
        contact.title,
        contact.crm_tier,
    )


def _same_matching(old: Portfolio, new: Portfolio) -> bool:
    """Whether every response matches in ``new`` as in ``old``: the same accounts with
    the same domains, the same contacts (in the same places) with the same emails."""
    if old.accounts.keys() != new.accounts.keys() or len(old.contacts) != len(new.contacts):
        return False
    if any(a.domains != old.accounts[i].domains for i, a in new.accounts.items()):
        return False
    return all(
        (o.id, o.account_id, o.email) == (n.id, n.account_id, n.email)
        for o, n in zip(old.contacts, new.contacts, strict=True)
    )


def _closure(
    accounts: set[str],
    by_account: Mapping[str, list[_Key]],
    matched: Mapping[_Key, Counted],
    by_email: Mapping[str, set[str]],
) -> set[str]:
    """``accounts`` and every account sharing a contact-less respondent with one of them,
    over the given indexes."""
    done: set[str] = set()
    todo = list(accounts)
    while todo:
        account_id = todo.pop()
        if account_id in done:
            continue
        done.add(account_id)
        for key in by_account.get(account_id, ()):
            item = matched[key]
            if item.contact is None:
                email = (item.response.email or "").strip(" \t").lower()
                todo.extend(by_email.get(email, ()))
    return done

"""What the change functions of rule expressions read: past figures and past answers.

``previous(x, "30d")``, ``delta(x, "30d")``, ``changed(x)``, ``since(x)`` and
``held(x)`` on account and portfolio figures read the figure history through a
``HistorySource`` (the state store's, or none); on response fields they read the same
respondent's previous answer among the cycle's responses, so they need no store.

Values are looked up once per point in time and cached for the evaluation: a rule over
50,000 accounts makes one query per duration, not one per account. Of each account's
row only the figures the evaluation reads are kept (``expect``, and any other asked
for later, which reads that point again with it).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Protocol

from agent.core.history import compared

__all__ = ["Answers", "HistoryRow", "HistorySource", "RuleHistory"]

_DAY = 86_400.0


class HistoryRow(Protocol):
    @property
    def as_of(self) -> datetime: ...
    @property
    def figures(self) -> Mapping[str, Any]: ...
    @property
    def since(self) -> Mapping[str, Sequence[Any]]: ...


class HistorySource(Protocol):
    """Where the stored history comes from (``agent.state.history.StoredHistory``)."""

    def accounts_at(
        self,
        at: datetime,
        *,
        strict: bool = False,
        ids: Sequence[str] | None = None,
        keys: Collection[str] | None = None,
    ) -> Mapping[str, HistoryRow]: ...

    def portfolio_points(self, until: datetime) -> Sequence[tuple[datetime, Mapping[str, Any]]]: ...


def _decode(value: Any, kind: str) -> Any:
    if kind == "time" and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


class RuleHistory:
    """The past as the change functions see it at one evaluation's ``as_of``."""

    def __init__(
        self,
        source: HistorySource | None,
        responses: Sequence[Any] = (),
        accounts: Sequence[str] | None = None,
    ) -> None:
        """``accounts``: the only accounts the evaluation covers (a new answer's), whose
        rows alone are read; None: every account's."""
        self.source = source
        self._responses = responses
        self._ids = None if accounts is None else sorted(accounts)
        self._respondents: Callable[[Any], Any] | None = None
        #: Per point: the figure keys its rows hold, and the rows.
        self._accounts: dict[
            tuple[datetime, bool], tuple[frozenset[str], Mapping[str, HistoryRow]]
        ] = {}
        #: The account figures read or expected so far (each point's rows keep these).
        self._keys: set[str] = set()
        self._portfolio: list[tuple[datetime, Mapping[str, Any]]] | None = None
        self._portfolio_until: datetime | None = None

    # -- accounts --------------------------------------------------------------------

    def expect(self, keys: Iterable[str]) -> None:
        """Account figures the evaluation reads (its rules' conditions and texts): each
        point's rows are read once with all of them."""
        self._keys.update(keys)

    def _rows(self, at: datetime, strict: bool, figure: str) -> Mapping[str, HistoryRow]:
        point = (at, strict)
        self._keys.add(figure)
        cached = self._accounts.get(point)
        if cached is None or figure not in cached[0]:
            keys = frozenset(self._keys)
            rows: Mapping[str, HistoryRow] = (
                {}
                if self.source is None
                else self.source.accounts_at(at, strict=strict, ids=self._ids, keys=keys)
            )
            cached = self._accounts[point] = (keys, rows)
        return cached[1]

    def account(
        self, now: datetime, account_id: str, key: str, kind: str, seconds: float | None
    ) -> Any:
        """The figure ``seconds`` ago (None: at the previous cycle), or None if unknown."""
        if seconds is None:
            row = self._rows(now, True, key).get(account_id)
        else:
            row = self._rows(now - timedelta(seconds=seconds), False, key).get(account_id)
        return None if row is None else _decode(row.figures.get(key), kind)

    def account_changed(self, now: datetime, account_id: str, key: str, current: Any) -> bool:
        """Whether the figure differs from the previous cycle's (false without history)."""
        row = self._rows(now, True, key).get(account_id)
        return row is not None and compared(key, _plain(current)) != compared(
            key, row.figures.get(key)
        )

    def account_since(self, now: datetime, account_id: str, key: str, current: Any) -> float | None:
        """Days the current value has held (0 when it changed this cycle)."""
        row = self._rows(now, True, key).get(account_id)
        since = None if row is None else row.since.get(key)  # decoded once: a new dict each time
        if not since:
            return None
        if self.account_changed(now, account_id, key, current):
            return 0.0
        began = datetime.fromisoformat(since[0])
        return (now - began).total_seconds() / _DAY

    def account_held(self, now: datetime, account_id: str, key: str, current: Any) -> float | None:
        """Days the value before the current one had held."""
        row = self._rows(now, True, key).get(account_id)
        since = None if row is None else row.since.get(key)  # decoded once: a new dict each time
        if not since:
            return None
        if self.account_changed(now, account_id, key, current):
            began = datetime.fromisoformat(since[0])
            return (now - began).total_seconds() / _DAY
        held = since[1]
        return None if held is None else float(held)

    # -- portfolio -------------------------------------------------------------------

    def _points(self, now: datetime) -> list[tuple[datetime, Mapping[str, Any]]]:
        if self._portfolio is None or self._portfolio_until != now:
            points = [] if self.source is None else self.source.portfolio_points(now)
            self._portfolio = [(at, f) for at, f in points if at < now]
            self._portfolio_until = now
        return self._portfolio

    def portfolio(self, now: datetime, key: str, seconds: float | None) -> Any:
        points = self._points(now)
        if seconds is not None:
            at = now - timedelta(seconds=seconds)
            points = [(t, f) for t, f in points if t <= at]
        return points[-1][1].get(key) if points else None

    def portfolio_changed(self, now: datetime, key: str, current: Any) -> bool:
        points = self._points(now)
        return bool(points) and compared(key, current) != compared(key, points[-1][1].get(key))

    def portfolio_since(self, now: datetime, key: str, current: Any) -> float | None:
        points = self._points(now)
        if not points:
            return None
        value = compared(key, current)
        began = now
        for at, figures in reversed(points):
            if compared(key, figures.get(key)) != value:
                break
            began = at
        return (now - began).total_seconds() / _DAY

    def portfolio_held(self, now: datetime, key: str, current: Any) -> float | None:
        points = self._points(now)
        value = compared(key, current)
        ordered = list(reversed(points))
        i = 0
        while i < len(ordered) and compared(key, ordered[i][1].get(key)) == value:
            i += 1
        if i == len(ordered):
            return None
        end = now if i == 0 else ordered[i - 1][0]
        before = compared(key, ordered[i][1].get(key))
        began = ordered[i][0]
        for at, figures in ordered[i:]:
            if compared(key, figures.get(key)) != before:
                break
            began = at
        return (end - began).total_seconds() / _DAY

    # -- respondents -----------------------------------------------------------------

    def previous_answer(self, facts: Any) -> Any:
        """The same respondent's answer before this one (ResponseFacts), or None."""
        if self._respondents is None:
            responses = self._responses
            self._respondents = (
                responses.previous() if isinstance(responses, Answers) else _index(responses)
            )
        return self._respondents(facts)


class Answers(list[Any]):
    """One computation's answers' facts, each one's previous answer by the same
    respondent indexed once, when first asked, for every evaluation that reads them
    (the alerts and escalation jobs of a cycle: about a second each at 1,000,000
    answers)."""

    __slots__ = ("_previous",)

    def __init__(self, facts: Iterable[Any] = ()) -> None:
        super().__init__(facts)
        self._previous: Callable[[Any], Any] | None = None

    def previous(self) -> Callable[[Any], Any]:
        """``_index`` of these answers, built on the first call."""
        found = self._previous
        if found is None:
            found = self._previous = _index(self)
        return found


def _respondent(facts: Any) -> str | tuple[str] | None:
    """Who answered: a contact by its id (a string the contact already holds: no key
    made per answer, a million at 50,000 accounts); else the normalised email, in a
    tuple (never equal to an id)."""
    contact = facts.contact
    if contact is not None:
        contact_id: str = contact.id  # unique in the CRM: the answer's account is the contact's
        return contact_id
    email = facts.response.email
    return None if not email else (email.strip().lower(),)


def _index(responses: Sequence[Any]) -> Callable[[Any], Any]:
    """Each answer's previous answer by the same respondent (looked up by the later
    answer), in the order (submitted_at, response_id) within a respondent.

    A computation's responses come in the store's order, which within a respondent is
    that order but for ties broken by source: then one pass remembering each
    respondent's last answer gives the index, without a list per respondent (about 60
    MB less at 1,000,000 answers, at the alerts job's memory peak). An answer out of
    that order (a folder's file order, another caller's sequence) makes it group the
    answers by respondent instead, and sort a respondent's answers when one of them is
    first asked about: a rule asks about few respondents (an executive's answers, say),
    and sorting every respondent's took 4 s of ``rules test`` at 1,000,000 answers."""
    previous: dict[int, Any] = {}
    last: dict[str | tuple[str], Any] = {}
    for facts in responses:
        who = _respondent(facts)
        if who is None:
            continue
        before = last.get(who)
        if before is not None:
            was, now = before.response, facts.response
            if was.submitted_at > now.submitted_at or (
                was.submitted_at == now.submitted_at and was.response_id > now.response_id
            ):
                return _OnDemand(responses).previous
            previous[id(facts)] = before
        last[who] = facts
    return lambda facts: previous.get(id(facts))


class _OnDemand:
    """The previous answers of answers in any order: grouped by respondent in one pass,
    each respondent's answers sorted the first time one of them is asked about."""

    __slots__ = ("_found", "_unsorted")

    def __init__(self, responses: Sequence[Any]) -> None:
        self._unsorted: dict[str | tuple[str], list[Any]] = {}
        self._found: dict[int, Any] = {}
        for facts in responses:
            who = _respondent(facts)
            if who is not None:
                answers = self._unsorted.get(who)
                if answers is None:
                    self._unsorted[who] = [facts]
                else:
                    answers.append(facts)

    def previous(self, facts: Any) -> Any:
        who = _respondent(facts)
        if who is None:
            return None
        answers = self._unsorted.pop(who, None)
        if answers is not None:
            answers.sort(key=_answered)
            for before, after in pairwise(answers):
                self._found[id(after)] = before
        return self._found.get(id(facts))


def _answered(facts: Any) -> tuple[datetime, str]:
    return (facts.response.submitted_at, facts.response.response_id)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    return value

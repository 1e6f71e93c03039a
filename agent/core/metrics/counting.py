"""Which responses count: matched, inside the window, the latest per respondent.

A respondent is the matched contact, or for contact-less matches the lowercased
email across the whole portfolio; a contact-less match without an email is a
respondent of its own. Ties at the same instant go to the larger ``response_id``
(plain string order), then to the larger source name, so the result never depends
on the input's order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from agent.core.models import Response

__all__ = ["Counted", "in_window", "is_later", "latest_per_respondent", "respondent_key"]


class Counted(NamedTuple):
    """A counted response and where it was matched (``contact`` is a contact index)."""

    response: Response
    account_id: str
    contact: int | None


def in_window(submitted_at: datetime, as_of: datetime, window_days: int) -> bool:
    """``as_of - window_days ≤ submitted_at ≤ as_of``, both ends inclusive; a day is 86,400 s."""
    return as_of - timedelta(days=window_days) <= submitted_at <= as_of


def respondent_key(response: Response, contact: int | None) -> Hashable:
    """Who answered: the contact index, else the lowercased email, else the answer itself."""
    if contact is not None:
        return contact
    email = (response.email or "").strip(" \t").lower()
    if email:
        return email
    return ("", response.source, response.response_id)


def is_later(candidate: Response, current: Response) -> bool:
    """Whether ``candidate`` replaces ``current`` as the respondent's latest answer."""
    if candidate.submitted_at != current.submitted_at:
        return candidate.submitted_at > current.submitted_at
    if candidate.response_id != current.response_id:
        return candidate.response_id > current.response_id
    return candidate.source > current.source


def latest_per_respondent(
    matched: Iterable[Counted], as_of: datetime, window_days: int
) -> dict[Hashable, Counted]:
    """The latest in-window matched response of every respondent, keyed by respondent."""
    start = as_of - timedelta(days=window_days)
    latest: dict[Hashable, Counted] = {}
    for item in matched:
        response, _, contact = item
        if not start <= response.submitted_at <= as_of:
            continue
        # respondent_key, inline for the common case (a matched contact): once per response
        key = contact if contact is not None else respondent_key(response, None)
        current = latest.get(key)
        if current is None or is_later(response, current.response):
            latest[key] = item
    return latest

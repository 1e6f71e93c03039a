"""Typed domain values: the entities of DOMAIN.md.

Plain frozen dataclasses with slots rather than pydantic models: a cycle builds
millions of them and they are validated once, at the boundary that parses them.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Literal, TypeVar

__all__ = [
    "CATEGORIES",
    "NO_VALUES",
    "TIERS",
    "VALUE_LIMIT",
    "Account",
    "Category",
    "Contact",
    "Dropped",
    "Rejected",
    "Response",
    "Tier",
    "category_of",
    "printable",
    "reject_value",
    "shared_text",
    "slot_setters",
    "sort_as_stored",
]

Tier = Literal["frontline", "management", "executive", "unknown"]
Category = Literal["promoter", "passive", "detractor"]

_SURROGATE = re.compile("[\ud800-\udfff]")
#: A reject's ``value`` shows at most this many characters of the offending text.
VALUE_LIMIT = 80

#: The three tiers that count for coverage, in DOMAIN.md's (alphabetical) order.
TIERS: tuple[Tier, ...] = ("executive", "frontline", "management")
CATEGORIES: tuple[Category, ...] = ("promoter", "passive", "detractor")


def category_of(score: int) -> Category:
    """Promoter 9-10, passive 7-8, detractor 0-6."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def slot_setters(cls: type, names: Sequence[str]) -> tuple[Callable[[Any, Any], None], ...]:
    """The setter of each field of the frozen slots dataclass ``cls``, in ``names`` order.

    For readers that build hundreds of thousands of values: ``object.__new__(cls)`` then
    one setter per field is the same value as ``cls(...)`` in a third of the time (the
    frozen ``__init__`` goes through ``object.__setattr__`` for each field). ``names``
    must be every field of ``cls``: one added later stops the reader's import instead of
    being left unset.
    """
    declared = [f.name for f in fields(cls)]
    if sorted(names) != sorted(declared):
        raise TypeError(f"{cls.__name__} has the fields {declared}, not {list(names)}")
    return tuple(vars(cls)[name].__set__ for name in names)


#: The ``crm_values`` of a record that holds none of the agent's fields: one shared,
#: read-only mapping instead of an empty dict per record (half a million contacts).
NO_VALUES: Mapping[str, object] = MappingProxyType({})

#: Text up to this length is shared by ``shared_text``: ids, titles, tiers, emails and
#: written figures; longer text (comments, names) rarely repeats.
SHARED_LENGTH = 40

_T = TypeVar("_T")


def shared_text(value: _T) -> _T:
    """``value``, as the one shared copy when it is short text.

    Bulk readers make a new string for every field of every row; the same account id,
    title, tier or email then sits in memory once per row that holds it. Shared, each
    is held once (and compares by identity first).
    """
    # exactly str: ``sys.intern`` refuses a subclass (isinstance narrows for the checker)
    if isinstance(value, str) and type(value) is str and len(value) <= SHARED_LENGTH:
        return sys.intern(value)  # type: ignore[return-value]  # str is _T here
    return value


@dataclass(frozen=True, slots=True)
class Account:
    """A CRM account. ``crm_values`` holds what the CRM has now in the agent's fields."""

    id: str
    name: str
    domains: tuple[str, ...] = ()
    revenue: float = 0.0
    revenue_potential: float | None = None
    owner_email: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    crm_values: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Contact:
    """A CRM contact. ``crm_tier`` is the raw value of the CRM's tier field, if any."""

    id: str
    account_id: str
    email: str | None = None
    name: str = ""
    title: str = ""
    crm_tier: str | None = None
    crm_values: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    """One accepted NPS answer. ``source`` names where it came from (file, webhook …)."""

    response_id: str
    email: str | None
    score: int
    submitted_at: datetime
    driver: str | None = None
    comment: str | None = None
    account_hint: str | None = None
    loop_closed_at: datetime | None = None
    source: str = ""

    @property
    def category(self) -> Category:
        return category_of(self.score)


def sort_as_stored(responses: list[Response]) -> None:
    """Sort ``responses`` in place into the store's order: submitted, then source, then
    id (a full tie keeps its order).

    Three stable sorts on one attribute each, the least significant first: the very
    order of one sort on the ``(submitted_at, source, response_id)`` tuple, without a
    key tuple per answer and with one plain comparison per step. At 1,000,000 answers
    that took a third of the time, and a sort holds the interpreter for its whole
    length, so another thread (a webhook's answer) waited seconds behind the one sort.
    """
    responses.sort(key=_BY_ID)
    responses.sort(key=_BY_SOURCE)
    responses.sort(key=_BY_SUBMITTED)


_BY_ID = attrgetter("response_id")
_BY_SOURCE = attrgetter("source")
_BY_SUBMITTED = attrgetter("submitted_at")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that was not accepted: where it was, why, and the offending raw text
    (``value``, cut at 80 characters; empty when the offending field was empty)."""

    source: str
    position: int
    reason: str
    value: str = ""


def reject_value(value: object) -> str:
    """A raw value as a reject shows it: text as it is, a JSON value as JSON text
    (``11``, ``7.5``, ``true``, ``null``), a missing value as empty; cut at 80 characters
    and printable (a lone surrogate shows as U+FFFD)."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)
    return printable(text[:VALUE_LIMIT])


def printable(text: str) -> str:
    """``text`` with every lone surrogate (from a JSON escape) shown as U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


@dataclass(frozen=True, slots=True)
class Dropped:
    """An account or contact row that is not used in the figures: where it was and why
    (``missing_email``, ``account_rejected``, ``unknown_account``, or the reason its
    own row was rejected)."""

    source: str
    position: int
    reason: str

"""What the figure history compares and keeps: pure functions over the metrics document.

An account's figures changed when they differ *as people read them*: scores on a
0-100 scale to 0.1 point, shares to 0.001, everything else exactly; ``recency_score``
alone, which moves with the clock, is no change (its effect on ``health_score`` is).
Both the history store (a row per change) and the change rules (``changed``,
``since``) use this one comparison.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from agent.core.document import AccountMetrics, PortfolioMetrics

__all__ = [
    "ACCOUNT_KEYS",
    "CLOCK_KEYS",
    "PORTFOLIO_KEYS",
    "Retention",
    "account_figures",
    "compared",
    "digest",
    "digest_of",
    "portfolio_figures",
    "since_map",
    "thinned_away",
]

#: Keys compared at 0.1 point (0-100 scales).
_SCORES = frozenset(
    {"nps", "nps_strict", "health_score", "tier_nps", "revenue_weighted_nps", "recency_score"}
)
#: Keys compared at 0.001 (shares between 0 and 1).
_SHARES = frozenset(
    {
        "contact_coverage",
        "tier_coverage",
        "account_coverage",
        "revenue_coverage",
        "response_rate",
        "closed_loop_rate",
    }
)
#: Keys that move with the clock alone; their effect shows in the others.
CLOCK_KEYS = frozenset({"recency_score"})

ACCOUNT_KEYS = tuple(f.name for f in fields(AccountMetrics))
PORTFOLIO_KEYS = tuple(f.name for f in fields(PortfolioMetrics))


@dataclass(frozen=True, slots=True)
class Retention:
    """How portfolio points are thinned with age."""

    daily_after: timedelta = timedelta(days=30)
    weekly_after: timedelta = timedelta(days=365)


#: Value types that stay as they are, both in a figure's JSON and in its comparison
#: (checked by exact type first: a cycle asks this of millions of values).
_AS_IS = frozenset({str, int, bool, list, type(None)})
_JSON_AS_IS = frozenset({str, int, bool, float, type(None)})


def _jsonable(value: Any) -> Any:
    if type(value) in _JSON_AS_IS:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def account_figures(metrics: AccountMetrics) -> dict[str, Any]:
    """The metrics document's account keys, as in its JSON (datetimes ISO 8601)."""
    return {k: _jsonable(getattr(metrics, k)) for k in ACCOUNT_KEYS}


def portfolio_figures(metrics: PortfolioMetrics) -> dict[str, Any]:
    """The metrics document's portfolio keys, as in its JSON."""
    return {k: _jsonable(getattr(metrics, k)) for k in PORTFOLIO_KEYS}


def compared(key: str, value: Any) -> Any:  # noqa: PLR0911  # one case per kind of value
    """``value`` of figure ``key`` at the precision a change is judged by.

    The same whether it comes from the document or from its JSON (a datetime and its
    ISO 8601 text compare equal; a map compares by sorted items, a list as a list).
    """
    if type(value) in _AS_IS:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        if key in _SCORES:
            return round(value, 1)
        if key in _SHARES:
            return round(value, 3)
        return value
    if isinstance(value, dict):
        score = key in _SCORES
        return tuple(
            sorted(
                (k, round(v, 1) if score and isinstance(v, float) else v) for k, v in value.items()
            )
        )
    if isinstance(value, tuple):
        return list(value)
    return value


_COMPARED_KEYS = tuple(k for k in ACCOUNT_KEYS if k not in CLOCK_KEYS)
_compared_values = attrgetter(*_COMPARED_KEYS)


def _hashed(values: Iterable[Any]) -> str:
    return hashlib.blake2b(repr(tuple(values)).encode(), digest_size=16).hexdigest()


def digest(figures: Mapping[str, Any]) -> str:
    """What decides whether an account's figures changed (see the module docstring)."""
    return _hashed(compared(k, figures.get(k)) for k in _COMPARED_KEYS)


def digest_of(metrics: AccountMetrics) -> str:
    """``digest(account_figures(metrics))``, without building the figures (a cycle asks
    this of every account; only the changed ones need their figures)."""
    values = _compared_values(metrics)
    return _hashed(
        [
            v if type(v) in _AS_IS else compared(k, v)
            for k, v in zip(_COMPARED_KEYS, values, strict=True)
        ]
    )


def since_map(
    figures: Mapping[str, Any],
    as_of: datetime,
    previous: Mapping[str, Any] | None,
    previous_since: Mapping[str, Any] | None,
) -> dict[str, list[Any]]:
    """Per key: ``[when its current value began (ISO 8601), days the value before held]``.

    ``previous``/``previous_since`` are the row in force before ``as_of`` (None: the
    first row, so every value begins now and nothing is known of before).
    """
    stamp = as_of.isoformat()
    if previous is None or not previous_since:  # every value begins now
        return {key: [stamp, None] for key in figures if key not in CLOCK_KEYS}
    out: dict[str, list[Any]] = {}
    for key, value in figures.items():
        if key in CLOCK_KEYS:
            continue
        before = (previous_since or {}).get(key)
        if (
            previous is not None
            and before
            and compared(key, previous.get(key)) == compared(key, value)
        ):
            out[key] = list(before)
            continue
        held = None
        if previous is not None and before:
            held = (as_of - datetime.fromisoformat(before[0])).total_seconds() / 86_400
        out[key] = [stamp, held]
    return out


def thinned_away(stamps: Iterable[datetime], now: datetime, retention: Retention) -> list[datetime]:
    """Which of ``stamps`` thinning removes: all but the last of each day (older than
    ``daily_after``) or of each ISO week (older than ``weekly_after``)."""
    keep: dict[tuple[str, int, int], datetime] = {}
    grouped: list[tuple[tuple[str, int, int], datetime]] = []
    for stamp in stamps:
        age = now - stamp
        if age > retention.weekly_after:
            year, week, _ = stamp.isocalendar()
            key = ("w", year, week)
        elif age > retention.daily_after:
            key = ("d", stamp.toordinal(), 0)
        else:
            continue
        grouped.append((key, stamp))
        if key not in keep or stamp > keep[key]:
            keep[key] = stamp
    return [stamp for key, stamp in grouped if keep[key] != stamp]

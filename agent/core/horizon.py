"""How long a metrics document stays true when nothing but the clock moves.

``document_horizon`` gives the earliest instant after a document's ``as_of`` at which
the same inputs can give another document (apart from its ``as_of``): a counted
response leaving the window, a stored response whose ``submitted_at`` is still ahead
entering it, an open counted detractor becoming overdue, an account's recency score
starting to fall. A document computed at ``as_of`` is the document of every instant
in ``[as_of, horizon)``; None means no instant ahead changes it.

While an account's last counted answer is between ``recency_full_days`` and
``recency_zero_days`` old its recency score moves with the clock itself: the horizon
is then the next microsecond (the document holds for its own instant only).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from agent.core.compute import MatchedResponse
from agent.core.contract import MetricsConfig
from agent.core.document import MetricsDocument
from agent.core.metrics import is_open_detractor, recency_score

__all__ = ["TICK", "document_horizon", "earliest"]

#: The clock's resolution: the instant right after another.
TICK = timedelta(microseconds=1)


def earliest(*instants: datetime | None) -> datetime | None:
    """The first of the given instants (None: never)."""
    known = [i for i in instants if i is not None]
    return min(known) if known else None


def document_horizon(
    document: MetricsDocument,
    matches: Iterable[MatchedResponse],
    config: MetricsConfig,
) -> datetime | None:
    """The earliest instant after ``document.as_of`` at which the document can change
    with the same inputs; None when none can."""
    as_of = document.as_of
    window = timedelta(days=config.window_days)
    sla = timedelta(hours=config.loop_sla_hours)
    found: datetime | None = None
    for item in matches:
        submitted = item.response.submitted_at
        if submitted > as_of:  # enters the window when the clock reaches it
            at = submitted
        elif not item.counted:
            continue  # an earlier answer of a respondent, or out of the window: never counts
        else:
            at = submitted + window + TICK  # the window's start passes it
            response = item.response
            if is_open_detractor(response.score, response.loop_closed_at) and (
                as_of - submitted <= sla
            ):
                at = min(at, submitted + sla + TICK)  # becomes overdue
        if found is None or at < found:
            found = at
    for account in document.accounts:
        found = earliest(found, _recency_moves(account.last_response_at, as_of, config))
    return found


def _recency_moves(
    last: datetime | None, as_of: datetime, config: MetricsConfig
) -> datetime | None:
    """The first instant after ``as_of`` with another recency score for ``last``."""
    if last is None:
        return None
    now = recency_score(last, as_of, config)
    if now == 0.0:
        return None  # it stays 0 from here on
    if now != 100.0:
        return as_of + TICK  # falling with the clock
    # 100 until the age passes ``recency_full_days``: find the first microsecond after it
    at = max(as_of, last + timedelta(days=config.recency_full_days) - 2 * TICK)
    while recency_score(last, at, config) == now:
        at += TICK
    return at

"""The figures over time: per-account rows when a figure changes, portfolio points per cycle.

``record_history`` is the one call a cycle makes after computing its metrics
document. Everything it stores for one ``as_of`` commits in one transaction, so a
crash mid-cycle leaves either the whole point or nothing (the next cycle then stores
whatever changed since the last stored row: no duplicate, no gap in what changed).

An account gets a row only when one of its figures changed *as people read them*:
scores (0-100 scale) to 0.1 point, shares to 0.001, counts and money exactly, every
other key exactly; ``recency_score`` alone, which moves with the clock, does not make a
row (its effect on ``health_score`` does). The row holds the exact figures of the
metrics document at its ``as_of``.

Portfolio points older than ``daily_after`` are thinned to the last point of each UTC
day, older than ``weekly_after`` to the last of each ISO week.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from agent.config.settings import HistorySettings
from agent.core.batching import chunked
from agent.core.document import AccountMetrics, MetricsDocument, PortfolioMetrics
from agent.state import schema
from agent.state.dialect import bulk_write
from agent.state.ops_base import BATCH_ROWS
from agent.state.store import StateStore

__all__ = [
    "HistoryRepo",
    "Recorded",
    "Retention",
    "account_figures",
    "portfolio_figures",
    "record_history",
    "retention_of",
    "thinned_away",
]

#: Keys compared at 0.1 point (0-100 scales).
_SCORES = frozenset({"nps", "nps_strict", "health_score", "tier_nps"})
#: Keys compared at 0.001 (shares between 0 and 1).
_SHARES = frozenset({"contact_coverage", "tier_coverage"})
#: Keys that move with the clock alone; their effect shows in the others.
_CLOCK = frozenset({"recency_score"})


@dataclass(frozen=True, slots=True)
class Retention:
    """How portfolio points are thinned with age."""

    daily_after: timedelta = timedelta(days=30)
    weekly_after: timedelta = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one ``record`` stored."""

    accounts: int
    portfolio: int
    thinned: int = 0

    def as_counts(self) -> dict[str, int]:
        return {
            "history_accounts": self.accounts,
            "history_portfolio": self.portfolio,
            "history_thinned": self.thinned,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


_ACCOUNT_KEYS = tuple(f.name for f in fields(AccountMetrics))
_PORTFOLIO_KEYS = tuple(f.name for f in fields(PortfolioMetrics))


def account_figures(metrics: AccountMetrics) -> dict[str, Any]:
    """The metrics document's account keys, as in its JSON (datetimes ISO 8601)."""
    return {k: _jsonable(getattr(metrics, k)) for k in _ACCOUNT_KEYS}


def portfolio_figures(metrics: PortfolioMetrics) -> dict[str, Any]:
    """The metrics document's portfolio keys, as in its JSON."""
    return {k: _jsonable(getattr(metrics, k)) for k in _PORTFOLIO_KEYS}


def _compared(key: str, value: Any) -> Any:
    if isinstance(value, float):
        if key in _SCORES:
            return round(value, 1)
        if key in _SHARES:
            return round(value, 3)
    if isinstance(value, dict) and key in _SCORES:
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in value.items()}
    return value


def digest(figures: Mapping[str, Any]) -> str:
    """What decides whether an account's figures changed (see the module docstring)."""
    shown = {k: _compared(k, v) for k, v in figures.items() if k not in _CLOCK}
    text = json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class HistoryRepo:
    """Reads and writes the history tables of one state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    # -- writing -------------------------------------------------------------------

    def record(
        self,
        crm: str,
        document: MetricsDocument,
        *,
        changed: Collection[str] | None = None,
        retention: Retention | None = None,
    ) -> Recorded:
        """Store the document's point at its ``as_of``; idempotent for the same document.

        ``changed`` limits the comparison to those account ids (the rest are known to
        be unchanged); None compares every account.
        """
        as_of = document.as_of
        chosen = (
            document.accounts
            if changed is None
            else [a for a in document.accounts if a.id in set(changed)]
        )
        with self.store.transaction() as tx:
            conn = tx.connection
            previous = _digests_at(conn, crm, as_of)
            rows = []
            for metrics in chosen:
                figures = account_figures(metrics)
                value = digest(figures)
                if previous.get(metrics.id) != value:
                    rows.append(
                        {
                            "crm": crm,
                            "account_id": metrics.id,
                            "as_of": as_of,
                            "digest": value,
                            "figures": figures,
                        }
                    )
            for batch in chunked(rows, BATCH_ROWS):
                bulk_write(conn, schema.history_accounts, batch)
            _advance_heads(conn, crm, rows)
            portfolio = _add_portfolio(conn, crm, as_of, portfolio_figures(document.portfolio))
            thinned = _thin(conn, crm, as_of, retention) if retention is not None else 0
        return Recorded(len(rows), portfolio, thinned)

    def thin(self, crm: str, now: datetime, retention: Retention) -> int:
        """Thin old portfolio points now; returns how many were removed."""
        with self.store.transaction() as tx:
            return _thin(tx.connection, crm, now, retention)

    # -- reading -------------------------------------------------------------------

    def has_point(self, crm: str, as_of: datetime) -> bool:
        """Whether a portfolio point exists at exactly ``as_of`` (backfill resumes past it)."""
        c = schema.history_portfolio.c
        with self.store.reading() as tx:
            found = tx.connection.execute(
                select(c.as_of).where(c.crm == crm, c.as_of == as_of)
            ).first()
        return found is not None

    def portfolio(
        self, crm: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[datetime, dict[str, Any]]]:
        """Portfolio points, oldest first."""
        c = schema.history_portfolio.c
        stmt = select(c.as_of, c.figures).where(c.crm == crm).order_by(c.as_of)
        if since is not None:
            stmt = stmt.where(c.as_of >= since)
        if until is not None:
            stmt = stmt.where(c.as_of <= until)
        with self.store.reading() as tx:
            return [(r.as_of, dict(r.figures)) for r in tx.connection.execute(stmt)]

    def accounts(
        self,
        crm: str,
        ids: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, list[tuple[datetime, dict[str, Any]]]]:
        """Each account's rows (only when its figures changed), oldest first."""
        c = schema.history_accounts.c
        base = select(c.account_id, c.as_of, c.figures).where(c.crm == crm)
        if since is not None:
            base = base.where(c.as_of >= since)
        if until is not None:
            base = base.where(c.as_of <= until)
        found: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
        with self.store.reading() as tx:
            stmts = (
                [base]
                if ids is None
                else [base.where(c.account_id.in_(b)) for b in chunked(list(ids), BATCH_ROWS)]
            )
            for stmt in stmts:
                for row in tx.connection.execute(stmt.order_by(c.account_id, c.as_of)):
                    found.setdefault(row.account_id, []).append((row.as_of, dict(row.figures)))
        return found

    def accounts_at(self, crm: str, at: datetime) -> dict[str, tuple[datetime, dict[str, Any]]]:
        """Each account's figures in force at ``at``: its newest row at or before it."""
        c = schema.history_accounts.c
        newest = (
            select(c.account_id, func.max(c.as_of).label("as_of"))
            .where(c.crm == crm, c.as_of <= at)
            .group_by(c.account_id)
            .subquery()
        )
        stmt = select(c.account_id, c.as_of, c.figures).join(
            newest, and_(c.account_id == newest.c.account_id, c.as_of == newest.c.as_of)
        )
        with self.store.reading() as tx:
            return {
                r.account_id: (r.as_of, dict(r.figures))
                for r in tx.connection.execute(stmt.where(c.crm == crm))
            }

    def portfolio_at(self, crm: str, at: datetime) -> tuple[datetime, dict[str, Any]] | None:
        """The newest portfolio point at or before ``at``."""
        c = schema.history_portfolio.c
        stmt = (
            select(c.as_of, c.figures)
            .where(c.crm == crm, c.as_of <= at)
            .order_by(c.as_of.desc())
            .limit(1)
        )
        with self.store.reading() as tx:
            row = tx.connection.execute(stmt).first()
        return None if row is None else (row.as_of, dict(row.figures))

    def portfolio_before(self, crm: str, at: datetime) -> tuple[datetime, dict[str, Any]] | None:
        """The newest portfolio point strictly before ``at`` (the previous cycle's)."""
        c = schema.history_portfolio.c
        stmt = (
            select(c.as_of, c.figures)
            .where(c.crm == crm, c.as_of < at)
            .order_by(c.as_of.desc())
            .limit(1)
        )
        with self.store.reading() as tx:
            row = tx.connection.execute(stmt).first()
        return None if row is None else (row.as_of, dict(row.figures))


def _digests_at(conn: Connection, crm: str, as_of: datetime) -> dict[str, str]:
    """Each account's digest in force at ``as_of``.

    A cycle records at "now", after every stored row: the heads table answers. A
    backfill into the past asks for the newest row at or before ``as_of`` instead.
    """
    h = schema.history_heads.c
    newest = conn.execute(select(func.max(h.as_of)).where(h.crm == crm)).scalar()
    if newest is None or newest <= as_of:
        return {
            r.account_id: r.digest
            for r in conn.execute(select(h.account_id, h.digest).where(h.crm == crm))
        }
    c = schema.history_accounts.c
    latest = (
        select(c.account_id, func.max(c.as_of).label("as_of"))
        .where(c.crm == crm, c.as_of <= as_of)
        .group_by(c.account_id)
        .subquery()
    )
    stmt = (
        select(c.account_id, c.digest)
        .join(latest, and_(c.account_id == latest.c.account_id, c.as_of == latest.c.as_of))
        .where(c.crm == crm)
    )
    return {r.account_id: r.digest for r in conn.execute(stmt)}


def _advance_heads(conn: Connection, crm: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Move each account's head to its new row unless a newer row already is the head."""
    if not rows:
        return
    h = schema.history_heads.c
    ids = [r["account_id"] for r in rows]
    heads: dict[str, datetime] = {}
    for batch in chunked(ids, BATCH_ROWS):
        stmt = select(h.account_id, h.as_of).where(h.crm == crm, h.account_id.in_(batch))
        heads.update({r.account_id: r.as_of for r in conn.execute(stmt)})
    moved = [
        {"crm": crm, "account_id": r["account_id"], "as_of": r["as_of"], "digest": r["digest"]}
        for r in rows
        if r["account_id"] not in heads or heads[r["account_id"]] <= r["as_of"]
    ]
    for batch in chunked(moved, BATCH_ROWS):
        bulk_write(conn, schema.history_heads, batch, ["as_of", "digest"])


def _add_portfolio(conn: Connection, crm: str, as_of: datetime, figures: dict[str, Any]) -> int:
    c = schema.history_portfolio.c
    exists = conn.execute(select(c.as_of).where(c.crm == crm, c.as_of == as_of)).first()
    if exists is not None:
        return 0
    bulk_write(conn, schema.history_portfolio, [{"crm": crm, "as_of": as_of, "figures": figures}])
    return 1


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


def _thin(conn: Connection, crm: str, now: datetime, retention: Retention) -> int:
    c = schema.history_portfolio.c
    old = [
        r.as_of
        for r in conn.execute(
            select(c.as_of).where(c.crm == crm, c.as_of < now - retention.daily_after)
        )
    ]
    gone = thinned_away(old, now, retention)
    removed = 0
    for batch in chunked(gone, BATCH_ROWS):
        removed += conn.execute(
            delete(schema.history_portfolio).where(c.crm == crm, c.as_of.in_(batch))
        ).rowcount
    return removed


def retention_of(settings: HistorySettings) -> Retention:
    """The thinning thresholds of the ``history:`` settings."""
    return Retention(
        daily_after=timedelta(days=settings.daily_after_days),
        weekly_after=timedelta(days=settings.weekly_after_days),
    )


def record_history(
    store: StateStore,
    crm: str,
    document: MetricsDocument,
    settings: HistorySettings,
    changed_accounts: Collection[str] | None = None,
) -> dict[str, int]:
    """The cycle's one call after computing: store what changed; returns counts.

    Nothing is stored when ``history.enabled`` is false.
    """
    if not settings.enabled:
        return {}
    recorded = HistoryRepo(store).record(
        crm, document, changed=changed_accounts, retention=retention_of(settings)
    )
    return recorded.as_counts()

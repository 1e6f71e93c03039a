"""The figures over time: per-account rows when a figure changes, portfolio points per cycle.

``record_history`` is the one call a cycle makes after computing its metrics
document. What it stores for one ``as_of`` commits in pieces (``agent.state.pieces``):
the account rows with their heads a few thousand at a time, then the portfolio point,
which marks the point complete (``has_point``). A crash mid-cycle leaves some accounts'
rows at ``as_of`` and no portfolio point: recording the same document again adds only
the missing rows and the point, and the next cycle stores whatever changed since each
account's last stored row (no duplicate, no gap in what changed). An account's row
and its head always commit together.

An account gets a row only when one of its figures changed *as people read them*:
scores (0-100 scale) to 0.1 point, shares to 0.001, counts and money exactly, every
other key exactly; ``recency_score`` alone, which moves with the clock, does not make a
row (its effect on ``health_score`` does). The row holds the exact figures of the
metrics document at its ``as_of``.

Portfolio points older than ``daily_after`` are thinned to the last point of each UTC
day, older than ``weekly_after`` to the last of each ISO week.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from sys import intern
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, delete, func, select

from agent.config.settings import HistorySettings
from agent.core.batching import chunked
from agent.core.compute import without_gc
from agent.core.contract import HISTORY_FIELDS, FieldSpec
from agent.core.document import AccountMetrics, MetricsDocument
from agent.core.history import (
    Retention,
    account_figures,
    digest_of,
    portfolio_figures,
    since_map,
    thinned_away,
)
from agent.state import schema
from agent.state.dialect import bulk_write, bulk_write_bound, plain_rows, row_binder
from agent.state.jsontext import loads
from agent.state.ops_base import BATCH_ROWS
from agent.state.pieces import commit_in_pieces
from agent.state.store import StateStore
from agent.state.tx import StateTx

__all__ = [
    "HistoryRepo",
    "Recorded",
    "Row",
    "StoredHistory",
    "history_fields",
    "last_portfolio_point",
    "record_history",
    "record_portfolio_point",
    "retention_of",
    "rule_history",
]


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one ``record`` stored."""

    accounts: int
    portfolio: int
    thinned: int = 0
    #: Accounts whose figures were compared with their last row.
    compared: int = 0

    def as_counts(self) -> dict[str, int]:
        return {
            "history_accounts": self.accounts,
            "history_compared": self.compared,
            "history_portfolio": self.portfolio,
            "history_thinned": self.thinned,
        }


class Row:
    """One stored account row: its figures and, per key, since when its value held.

    The change rules read every account's row in force at an instant (50,000 of them,
    once per duration a rule names), so a row is kept small: ``since``, twice the size of
    the figures once decoded and read only by ``since()`` and ``held()``, stays the
    stored JSON text until asked for; the figures' keys are one string per key, shared
    by every row, not one per row.
    """

    __slots__ = ("_since", "as_of", "figures")

    def __init__(
        self,
        as_of: datetime,
        figures: str,
        since: str | None,
        keys: Collection[str] | None = None,
    ) -> None:
        """A row from its stored JSON texts; ``keys``: only those figures are kept."""
        self.as_of = as_of
        decoded: dict[str, Any] = loads(figures)
        self.figures: dict[str, Any] = {
            intern(k): v for k, v in decoded.items() if keys is None or k in keys
        }
        self._since = since or "{}"

    @property
    def since(self) -> dict[str, list[Any]]:
        """Per key: since when its value held, and how long the one before had (a new
        dict at each call: decoded from the stored text)."""
        decoded: dict[str, list[Any]] = loads(self._since)
        return decoded

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return (self.as_of, self.figures, self.since) == (other.as_of, other.figures, other.since)

    __hash__ = None  # type: ignore[assignment]  # mutable figures, as the dataclass had

    def __repr__(self) -> str:
        return f"Row(as_of={self.as_of!r}, figures={self.figures!r}, since={self.since!r})"


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
        be unchanged since the last record): only their last rows are read; None
        compares every account.
        """
        as_of = document.as_of
        wanted = None if changed is None else frozenset(changed)
        chosen = (
            document.accounts
            if wanted is None
            else [a for a in document.accounts if a.id in wanted]
        )
        # Tens of thousands of rows and their figure maps are allocated at once: the
        # cycle collector's scans of the cycle's whole heap would cost more than
        # the writing itself.
        with without_gc():
            stored = self._record_rows(crm, as_of, chosen, wanted)
            # The portfolio point last: it says the point is complete (``has_point``).
            with self.store.transaction() as tx:
                conn = tx.connection
                portfolio = _add_portfolio(conn, crm, as_of, portfolio_figures(document.portfolio))
                thinned = _thin(conn, crm, as_of, retention) if retention is not None else 0
        return Recorded(stored, portfolio, thinned, len(chosen))

    def _record_rows(
        self,
        crm: str,
        as_of: datetime,
        chosen: Sequence[AccountMetrics],
        wanted: frozenset[str] | None,
    ) -> int:
        """Store the account rows of ``chosen`` that changed, with their heads; returns
        how many.

        The comparison (reading the last rows, digesting every chosen account) takes
        seconds at 50,000 accounts. A cycle's record (at or after every stored row: the
        heads answer) compares in a read transaction, and encodes the rows for the
        database (their figures as JSON text: most of the writing's work) there too;
        then it writes them ``PIECE_ROWS`` at a time, each piece with its accounts'
        heads in a transaction of its own, so the state's write lock (SQLite's single
        writer: a webhook storing an answer, an alert being recorded) is held for one
        piece at a time. A crash after some pieces leaves those accounts' rows and heads
        at ``as_of``: recording the same document again compares them equal and adds
        only the missing rows, as recording a later one stores what changed since each
        account's head. If someone else recorded in between (the newest head is not where
        the comparison saw it, nor at ``as_of`` by a piece of ours), the piece is rolled
        back and the rest compared again. A backfill into the past compares under the
        lock, in one transaction.
        """
        stored = 0
        while True:
            with self.store.reading() as tx:
                newest = _newest_head(tx.connection, crm)
                if newest is not None and newest > as_of:
                    break  # a backfill into the past
                rows = _new_rows(tx.connection, crm, as_of, chosen, wanted=wanted, newest=newest)
                bound = _bound_rows(tx.connection, rows)
            written = _Written(crm, as_of, newest)
            try:
                commit_in_pieces(self.store.transaction, zip(rows, bound, strict=True), written)
            except _HeadsMovedError:
                continue
            finally:
                stored += written.rows
            return stored
        with self.store.transaction() as tx:
            conn = tx.connection
            newest = _newest_head(conn, crm)
            rows = _new_rows(conn, crm, as_of, chosen, wanted=wanted, newest=newest)
            for piece in chunked(_bound_rows(conn, rows), BATCH_ROWS):
                bulk_write_bound(conn, schema.history_accounts, piece)
            _advance_heads(conn, crm, rows, fresh=newest is None or newest <= as_of)
        return stored + len(rows)

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

    def accounts_at(
        self,
        crm: str,
        at: datetime,
        *,
        strict: bool = False,
        ids: Sequence[str] | None = None,
        keys: Collection[str] | None = None,
    ) -> dict[str, Row]:
        """Each account's (of ``ids``) row in force at ``at``: its newest at or before it
        (``strict``: before it). ``keys``: the figures to keep of each row (None: all);
        a reader of one or two figures of 50,000 rows holds those, not two dozen each."""
        with self.store.reading() as tx:
            return _in_force(tx.connection, crm, at, strict=strict, ids=ids, keys=keys)

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


class _HeadsMovedError(Exception):
    """Someone recorded history since the comparison: compare again."""


class _Written:
    """Writes one piece of a cycle's rows with their heads (see ``_record_rows``)."""

    def __init__(self, crm: str, as_of: datetime, newest: datetime | None) -> None:
        self.crm = crm
        self.as_of = as_of
        #: The newest head as the comparison saw it, and ``as_of`` once a piece of
        #: ours is written: any other means someone else recorded meanwhile.
        self.ours = {newest}
        self.rows = 0

    def __call__(self, tx: StateTx, piece: list[tuple[dict[str, Any], tuple[Any, ...]]]) -> None:
        conn = tx.connection
        if _newest_head(conn, self.crm) not in self.ours:
            raise _HeadsMovedError
        bulk_write_bound(conn, schema.history_accounts, [bound for _, bound in piece])
        # At or after the newest head (a cycle's record), every head is older: each
        # row becomes its account's head, none needs reading under the lock.
        _advance_heads(conn, self.crm, [row for row, _ in piece], fresh=True)
        self.ours.add(self.as_of)
        self.rows += len(piece)


def _new_rows(
    conn: Connection,
    crm: str,
    as_of: datetime,
    chosen: Sequence[AccountMetrics],
    *,
    wanted: frozenset[str] | None,
    newest: datetime | None,
) -> list[dict[str, Any]]:
    """The rows to store at ``as_of``: the chosen accounts whose figures differ from
    the row in force (all of them when the CRM has no history: ``newest``, its newest
    head, is None)."""
    # No history yet for this CRM (its first cycle): nothing to compare with,
    # no row in force before, no head to keep.
    chosen_ids = None if wanted is None else [a.id for a in chosen]
    previous = {} if newest is None else _digests_at(conn, crm, as_of, newest, chosen_ids)
    changed_now = []
    for metrics in chosen:
        value = digest_of(metrics)
        if previous.get(metrics.id) != value:
            changed_now.append((metrics.id, account_figures(metrics), value))
    new_ids = [c[0] for c in changed_now]
    before = {} if newest is None else _rows_before(conn, crm, as_of, new_ids)
    rows = []
    begun: dict[str, list[Any]] | None = None  # a first row's: every value begins now
    for account_id, figures, value in changed_now:
        last = before.get(account_id)
        if last is None:
            # The same for every first row: built and serialised once.
            begun = begun or since_map(figures, as_of, None, None)
            since = begun
        else:
            since = since_map(figures, as_of, last.figures, last.since)
        rows.append(
            {
                "crm": crm,
                "account_id": account_id,
                "as_of": as_of,
                "digest": value,
                "figures": figures,
                "since": since,
            }
        )
    return rows


def _bound_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """``rows`` of ``history_accounts`` as ``bulk_write_bound`` takes them (in column
    order, each value converted for ``conn``'s dialect)."""
    names = [c.name for c in schema.history_accounts.columns]
    take = itemgetter(*names)
    bind = row_binder(conn, schema.history_accounts)
    return [bind(take(row)) for row in rows]


def _newest_head(conn: Connection, crm: str) -> datetime | None:
    """The ``as_of`` of the CRM's newest history row; None when it has none yet."""
    h = schema.history_heads.c
    newest: datetime | None = conn.execute(select(func.max(h.as_of)).where(h.crm == crm)).scalar()
    return newest


def _digests_at(
    conn: Connection,
    crm: str,
    as_of: datetime,
    newest: datetime,
    ids: Sequence[str] | None = None,
) -> dict[str, str]:
    """Each account's (of ``ids``, when given) digest in force at ``as_of``.

    A cycle records at "now", after every stored row (``newest``, the newest head):
    the heads table answers. A backfill into the past asks for the newest row at or
    before ``as_of`` instead.
    """
    h = schema.history_heads.c
    if newest <= as_of:
        digests: dict[str, str] = {}
        stmt = select(h.account_id, h.digest).where(h.crm == crm)
        for batch in [None] if ids is None else chunked(list(ids), BATCH_ROWS):
            chosen = stmt if batch is None else stmt.where(h.account_id.in_(batch))
            digests.update({r.account_id: r.digest for r in conn.execute(chosen)})
        return digests
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


def _in_force(
    conn: Connection,
    crm: str,
    at: datetime,
    *,
    strict: bool,
    ids: Sequence[str] | None = None,
    keys: Collection[str] | None = None,
) -> dict[str, Row]:
    """The newest row of each account (of ``ids``) at or before ``at`` (``strict``: before),
    with its figures of ``keys`` only (None: all)."""
    c = schema.history_accounts.c
    found: dict[str, Row] = {}
    texts: dict[str | None, str | None] = {}
    for batch in [None] if ids is None else chunked(list(ids), BATCH_ROWS):
        bound = c.as_of < at if strict else c.as_of <= at
        newest = select(c.account_id, func.max(c.as_of).label("as_of")).where(c.crm == crm, bound)
        if batch is not None:
            newest = newest.where(c.account_id.in_(batch))
        latest = newest.group_by(c.account_id).subquery()
        stmt = (
            select(c.account_id, c.as_of, cast(c.figures, Text), cast(c.since, Text))
            .join(latest, and_(c.account_id == latest.c.account_id, c.as_of == latest.c.as_of))
            .where(c.crm == crm)
        )
        # a small chunk: each fetched row's texts (about 2 KB) wait in it to be decoded
        for account_id, as_of, figures, since in plain_rows(conn, stmt, chunk=1_000):
            # one text for equal ones: the accounts recorded together, unchanged since,
            # hold the same since map (every first row does)
            found[account_id] = Row(as_of, figures, texts.setdefault(since, since), keys)
    return found


def _rows_before(conn: Connection, crm: str, as_of: datetime, ids: Sequence[str]) -> dict[str, Row]:
    """The rows in force just before ``as_of`` of the accounts about to get a new one."""
    if not ids:
        return {}
    return _in_force(conn, crm, as_of, strict=True, ids=ids)


class StoredHistory:
    """The history the change rules read (``agent.rules.history.HistorySource``)."""

    def __init__(self, store: StateStore, crm: str) -> None:
        self.repo = HistoryRepo(store)
        self.crm = crm

    def accounts_at(
        self,
        at: datetime,
        *,
        strict: bool = False,
        ids: Sequence[str] | None = None,
        keys: Collection[str] | None = None,
    ) -> dict[str, Row]:
        return self.repo.accounts_at(self.crm, at, strict=strict, ids=ids, keys=keys)

    def portfolio_points(self, until: datetime) -> list[tuple[datetime, dict[str, Any]]]:
        return self.repo.portfolio(self.crm, until=until)

    def mark(self) -> tuple[object, ...]:
        """What the change rules can read of this CRM's history, in four values: the
        rows and the newest instant of its account points and of its portfolio points.
        Rows are only added (never changed in place) or thinned out, so any record,
        backfill or thinning moves one of them."""
        found: list[object] = []
        with self.repo.store.reading() as tx:
            for table in (schema.history_accounts, schema.history_portfolio):
                stmt = select(func.count(), func.max(table.c.as_of)).where(table.c.crm == self.crm)
                found.extend(tx.connection.execute(stmt).one())
        return tuple(found)


def history_fields(
    store: StateStore, crm: str, document: MetricsDocument, specs: Sequence[FieldSpec]
) -> dict[str, dict[str, object]]:
    """``health_trend_30d`` and ``health_status_since`` per account, when written.

    The trend is ``health_score`` now minus 30 days ago (null without a score then);
    the status holds since the row that began it, or since now when it changed now
    (or no history exists yet: the history starts now).
    """
    wanted = {s.logical for s in specs if s.object == "account"} & set(HISTORY_FIELDS)
    if not wanted:
        return {}
    as_of = document.as_of
    repo = HistoryRepo(store)
    past = repo.accounts_at(crm, as_of - timedelta(days=30), keys=("health_score",))
    before = repo.accounts_at(crm, as_of, strict=True, keys=("health_status",))
    out: dict[str, dict[str, object]] = {}
    for metrics in document.accounts:
        then = past.get(metrics.id)
        old_score = None if then is None else then.figures.get("health_score")
        trend = (
            None
            if metrics.health_score is None or old_score is None
            else metrics.health_score - float(old_score)
        )
        row = before.get(metrics.id)
        unchanged = row is not None and row.figures.get("health_status") == metrics.health_status
        # the since map is decoded only when the status held (a row keeps it as text)
        began = row.since.get("health_status") if unchanged and row is not None else None
        since = datetime.fromisoformat(began[0]) if began else as_of
        out[metrics.id] = {"health_trend_30d": trend, "health_status_since": since}
    return out


def rule_history(store: StateStore, crm: str, settings: HistorySettings) -> StoredHistory | None:
    """The history the change rules read; None when ``history.enabled`` is false."""
    return StoredHistory(store, crm) if settings.enabled else None


def _advance_heads(
    conn: Connection, crm: str, rows: Sequence[Mapping[str, Any]], *, fresh: bool = False
) -> None:
    """Move each account's head to its new row unless a newer row already is the head.

    ``fresh``: no head of the CRM is newer than any of ``rows`` (none at all, or the
    rows are at or after its newest head): every row becomes its account's head.
    """
    if not rows:
        return
    h = schema.history_heads.c
    ids = [] if fresh else [r["account_id"] for r in rows]
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


def record_portfolio_point(
    store: StateStore,
    crm: str,
    as_of: datetime,
    figures: Mapping[str, Any],
    settings: HistorySettings,
) -> dict[str, int]:
    """A cycle whose figures held (nothing to compute): its portfolio point alone, from
    the settled cycle's figures; what ``record_history`` stores for the same document."""
    if not settings.enabled:
        return {}
    with store.transaction() as tx:
        added = _add_portfolio(tx.connection, crm, as_of, dict(figures))
        thinned = _thin(tx.connection, crm, as_of, retention_of(settings))
    return Recorded(0, added, thinned).as_counts()


def last_portfolio_point(store: StateStore, crm: str, before: datetime) -> dict[str, Any] | None:
    """The figures of the last portfolio point strictly before ``before`` (what the change
    functions compare a portfolio figure with), or None."""
    c = schema.history_portfolio.c
    stmt = select(c.figures).where(c.crm == crm, c.as_of < before).order_by(c.as_of.desc()).limit(1)
    with store.reading() as tx:
        row = tx.connection.execute(stmt).first()
    return None if row is None else dict(row.figures)


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

    Nothing is stored when ``history.enabled`` is false. ``history_ms`` is how long it
    took (the cycles log keeps it: what history adds to a cycle).
    """
    if not settings.enabled:
        return {}
    started = time.perf_counter()
    recorded = HistoryRepo(store).record(
        crm, document, changed=changed_accounts, retention=retention_of(settings)
    )
    return {**recorded.as_counts(), "history_ms": round(1000 * (time.perf_counter() - started))}

"""Showing figures to a person: rich tables, numbers rounded only here."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from agent.core.document import AccountMetrics, DriverMetrics, MetricsDocument, PortfolioMetrics
from agent.core.models import Dropped, Rejected
from agent.core.rounding import format_number

__all__ = [
    "ROW_LIMIT",
    "fmt",
    "headline_table",
    "readable_date",
    "readable_time",
    "render_document",
    "rows_table",
    "shown_value",
]


def fmt(value: object, *, percent: bool = False, decimals: int = 1) -> str:
    """A figure for people: ``-`` when absent, ratios as percent, money grouped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        shown = value * 100 if percent else value
        if isinstance(shown, float) and not math.isfinite(shown):
            return str(shown)
        text = format_number(shown, decimals)
        return f"{text} %" if percent else text
    return str(value)


def readable_time(moment: datetime) -> str:
    """An instant as a person reads it: ``1 June 2026, 12:00 UTC``."""
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%B %Y}, {utc:%H:%M} UTC"


def readable_date(moment: datetime | None) -> str:
    """A day as a person reads it: ``1 June 2026`` (``-`` when absent)."""
    if moment is None:
        return "-"
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%B %Y}"


def headline_table(p: PortfolioMetrics) -> Table:
    """NPS always next to the coverage it rests on (DOMAIN.md, idea 1)."""
    table = Table(title="Portfolio", show_header=True, header_style="bold")
    for name in (
        "NPS",
        "account coverage",
        "revenue coverage",
        "strict NPS",
        "revenue-weighted NPS",
    ):
        table.add_column(name, justify="right")
    table.add_row(
        fmt(p.nps),
        f"{fmt(p.account_coverage, percent=True)} ({p.accounts_with_feedback}/{p.accounts})",
        f"{fmt(p.revenue_coverage, percent=True)} of {fmt(p.total_revenue, decimals=0)}",
        fmt(p.nps_strict),
        fmt(p.revenue_weighted_nps),
    )
    return table


def _details_table(p: PortfolioMetrics) -> Table:
    table = Table(title="Leading metrics", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("response rate", fmt(p.response_rate, percent=True)),
        ("accounts with all three tiers", str(p.full_tier_coverage_accounts)),
        ("at-risk accounts", str(p.at_risk_accounts)),
        ("at-risk revenue", fmt(p.at_risk_revenue, decimals=0)),
        ("detractors", str(p.detractors)),
        (
            "closed within SLA",
            f"{p.detractors_closed_in_sla} ({fmt(p.closed_loop_rate, percent=True)})",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def drivers_table(drivers: Sequence[DriverMetrics], limit: int | None = None) -> Table:
    """Drivers by the revenue behind them: where the money is, not where the votes are."""
    table = Table(title="Drivers, revenue-weighted", header_style="bold")
    for name in (
        "driver",
        "answers",
        "NPS",
        "promoter revenue",
        "detractor revenue",
        "revenue NPS",
    ):
        table.add_column(name, justify="left" if name == "driver" else "right")
    ranked = sorted(
        drivers, key=lambda d: -(d.promoter_revenue + d.passive_revenue + d.detractor_revenue)
    )
    for d in ranked[:limit]:
        table.add_row(
            d.driver or "(none)",
            str(d.respondents),
            fmt(d.nps),
            fmt(d.promoter_revenue, decimals=0),
            fmt(d.detractor_revenue, decimals=0),
            fmt(d.revenue_nps),
        )
    return table


def accounts_table(accounts: Sequence[AccountMetrics], limit: int | None = None) -> Table:
    table = Table(title="Accounts by revenue", header_style="bold")
    for name in ("id", "name", "revenue", "NPS", "strict", "health", "status", "tiers", "flags"):
        table.add_column(
            name, justify="right" if name in {"revenue", "NPS", "strict", "health"} else "left"
        )
    for a in accounts[:limit]:
        flags = [
            name
            for name, on in (
                ("at risk", a.at_risk),
                ("misaligned", a.tier_misaligned),
                ("upsell", a.upsell_candidate),
                (f"{a.overdue_detractors} overdue", a.overdue_detractors > 0),
            )
            if on
        ]
        table.add_row(
            a.id,
            a.name,
            fmt(a.revenue, decimals=0),
            fmt(a.nps),
            fmt(a.nps_strict),
            fmt(a.health_score, decimals=0),
            a.health_status,
            ",".join(a.tiers_covered) or "-",
            ", ".join(flags),
        )
    return table


#: Rejected and dropped rows shown in the table before "and N more".
ROW_LIMIT = 50


def shown_value(value: str) -> str:
    """A reject's raw value as a person reads it: quoted, so that empty shows as ``""``."""
    return json.dumps(value, ensure_ascii=False)


def rows_table(
    title: str, rows: Sequence[Rejected] | Sequence[Dropped], limit: int | None
) -> Table:
    """Rejected or dropped rows: file, position, reason (and the value of a reject)."""
    with_value = bool(rows) and isinstance(rows[0], Rejected)
    table = Table(title=title, show_header=True, header_style="bold")
    for name in ("file", "position", "reason", *(("value",) if with_value else ())):
        table.add_column(name, justify="right" if name == "position" else "left")
    for row in rows[:limit] if limit is not None else rows:
        cells = [Text(row.source), Text(str(row.position)), Text(row.reason)]
        if isinstance(row, Rejected):
            cells.append(Text(shown_value(row.value)))
        table.add_row(*cells)
    return table


def _listed(
    console: Console, noun: str, rows: Sequence[Rejected] | Sequence[Dropped], list_all: str | None
) -> None:
    if not rows:
        return
    console.print(rows_table(f"{noun.capitalize()} rows ({len(rows)})", rows, ROW_LIMIT))
    if len(rows) > ROW_LIMIT:
        how = f": {list_all} lists all of them" if list_all else ""
        console.print(Text(f"... and {len(rows) - ROW_LIMIT} more {noun} rows{how}"))


def render_document(
    doc: MetricsDocument,
    console: Console,
    *,
    limit: int | None = 25,
    list_all: str | None = None,
) -> None:
    """The ``--format table`` view of the metrics document.

    Every rejected and dropped row is listed, up to ``ROW_LIMIT`` each; beyond that the
    table says how many more and ``list_all``, the command that lists them all.
    """
    console.print(f"as of {readable_time(doc.as_of)}")
    console.print(Group(headline_table(doc.portfolio), _details_table(doc.portfolio)))
    console.print(accounts_table(doc.accounts, limit))
    if limit is not None and len(doc.accounts) > limit:
        console.print(f"... {len(doc.accounts) - limit} more accounts (use --format json for all)")
    console.print(drivers_table(doc.drivers))
    console.print(
        f"unmatched responses: {len(doc.unmatched)}; rejected records: {len(doc.rejected)}; "
        f"dropped rows: {len(doc.dropped)}"
    )
    _listed(console, "rejected", doc.rejected, list_all)
    _listed(console, "dropped", doc.dropped, list_all)

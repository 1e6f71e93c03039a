"""Showing figures to a person: rich tables, numbers rounded only here."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group
from rich.table import Table

from agent.core.document import AccountMetrics, DriverMetrics, MetricsDocument, PortfolioMetrics

__all__ = ["fmt", "headline_table", "render_document"]


def fmt(value: object, *, percent: bool = False, decimals: int = 1) -> str:
    """A figure for people: ``-`` when absent, ratios as percent, money grouped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        shown = value * 100 if percent else value
        text = f"{shown:,.{decimals}f}"
        return f"{text} %" if percent else text
    return str(value)


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


def render_document(doc: MetricsDocument, console: Console, *, limit: int | None = 25) -> None:
    """The ``--format table`` view of the metrics document."""
    console.print(f"as of {doc.as_of.isoformat()}")
    console.print(Group(headline_table(doc.portfolio), _details_table(doc.portfolio)))
    console.print(accounts_table(doc.accounts, limit))
    if limit is not None and len(doc.accounts) > limit:
        console.print(f"... {len(doc.accounts) - limit} more accounts (use --format json for all)")
    console.print(drivers_table(doc.drivers))
    console.print(
        f"unmatched responses: {len(doc.unmatched)}; rejected records: {len(doc.rejected)}"
    )
    for r in doc.rejected[:20]:
        console.print(f"  rejected {r.source} record {r.position}: {r.reason}")

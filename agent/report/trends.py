"""The report's view of the figure history: trend lines, movers and health sparklines.

``load_history`` reads what the report needs from the state store once; everything
else here is a pure function of it. Sparklines are small hand-written ``<svg>``
polylines (numbers only, nothing to escape), so a list of a hundred accounts stays
light; the trend chart is a matplotlib figure like the report's other charts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from agent.core.document import AccountMetrics, MetricsDocument
from agent.report.render import COLORS
from agent.state.history import HistoryRepo

__all__ = ["Mover", "ReportHistory", "load_history", "movers", "sparkline", "trend_figure"]

#: How far back the sparklines reach.
SPARK_DAYS = 90
#: The window of the movers table.
MOVER_DAYS = 30


@dataclass(frozen=True, slots=True)
class ReportHistory:
    """The stored past up to the report's ``as_of``."""

    portfolio: Sequence[tuple[datetime, Mapping[str, Any]]]
    #: Each account's health score in force ``MOVER_DAYS`` before ``as_of``.
    health_then: Mapping[str, float | None]
    #: Each account's health scores over the last ``SPARK_DAYS`` (oldest first).
    health_series: Mapping[str, Sequence[tuple[datetime, float | None]]]


def load_history(repo: HistoryRepo, crm: str, as_of: datetime) -> ReportHistory | None:
    """What the report shows of the history; None when nothing was stored before ``as_of``."""
    points = repo.portfolio(crm, until=as_of)
    if not points:
        return None
    then = repo.accounts_at(crm, as_of - timedelta(days=MOVER_DAYS))
    start = as_of - timedelta(days=SPARK_DAYS)
    first = repo.accounts_at(crm, start)
    rows = repo.accounts(crm, since=start, until=as_of)
    series: dict[str, list[tuple[datetime, float | None]]] = {}
    for account_id, row in first.items():
        series[account_id] = [(start, row.figures.get("health_score"))]
    for account_id, history in rows.items():
        series.setdefault(account_id, []).extend(
            (at, figures.get("health_score")) for at, figures in history if at > start
        )
    return ReportHistory(
        portfolio=points,
        health_then={k: row.figures.get("health_score") for k, row in then.items()},
        health_series=series,
    )


@dataclass(frozen=True, slots=True)
class Mover:
    account: AccountMetrics
    before: float
    after: float
    spark: Markup

    @property
    def delta(self) -> float:
        return self.after - self.before


def movers(
    doc: MetricsDocument, history: ReportHistory, limit: int = 10
) -> tuple[list[Mover], list[Mover]]:
    """The largest health drops and rises over ``MOVER_DAYS`` (each at most ``limit``)."""
    moved: list[Mover] = []
    for account in doc.accounts:
        before = history.health_then.get(account.id)
        if before is None or account.health_score is None:
            continue
        if round(account.health_score - before, 1) == 0:
            continue
        spark = account_spark(account, history, doc.as_of)
        moved.append(Mover(account, float(before), account.health_score, spark))
    drops = sorted((m for m in moved if m.delta < 0), key=lambda m: (m.delta, m.account.id))
    rises = sorted((m for m in moved if m.delta > 0), key=lambda m: (-m.delta, m.account.id))
    return drops[:limit], rises[:limit]


def account_spark(account: AccountMetrics, history: ReportHistory, as_of: datetime) -> Markup:
    """The account's health over ``SPARK_DAYS``, ending with today's figure."""
    points = [*history.health_series.get(account.id, ()), (as_of, account.health_score)]
    return sparkline(points, as_of - timedelta(days=SPARK_DAYS), as_of, f"health of {account.name}")


def sparkline(
    points: Sequence[tuple[datetime, float | None]],
    start: datetime,
    end: datetime,
    label: str,
    *,
    width: int = 120,
    height: int = 24,
) -> Markup:
    """A step line of 0-100 values over ``start``..``end`` as a tiny inline ``<svg>``.

    A null value (no feedback) breaks the line; the last point gets a dot.
    """
    span = (end - start).total_seconds() or 1.0
    segments: list[list[str]] = [[]]
    last_xy: tuple[float, float] | None = None
    ordered = sorted(points, key=lambda p: p[0])
    for at, value in ordered:
        if value is None:
            segments.append([])
            continue
        x = max(0.0, min(1.0, (at - start).total_seconds() / span)) * (width - 4) + 2
        y = (1 - max(0.0, min(100.0, float(value))) / 100) * (height - 4) + 2
        if segments[-1] and last_xy is not None:
            segments[-1].append(f"{x:.1f},{last_xy[1]:.1f}")  # held until it changed
        segments[-1].append(f"{x:.1f},{y:.1f}")
        last_xy = (x, y)
    lines = "".join(
        f'<polyline points="{" ".join(s)}" fill="none" stroke="{COLORS["blind"]}" '
        'stroke-width="1.5"/>'
        for s in segments
        if len(s) > 1
    )
    dot = (
        f'<circle cx="{last_xy[0]:.1f}" cy="{last_xy[1]:.1f}" r="2" fill="{COLORS["blind"]}"/>'
        if last_xy is not None
        else ""
    )
    values = [v for _, v in ordered if v is not None]
    said = " → ".join(f"{v:.0f}" for v in (values[0], values[-1])) if values else "no feedback"
    safe_label = Markup.escape(f"{label}: {said}")
    return Markup(  # noqa: S704  # numbers we formatted and an escaped label only
        f'<svg class="spark" role="img" aria-label="{safe_label}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="2" y1="{height - 2}" x2="{width - 2}" y2="{height - 2}" '
        f'stroke="{COLORS["grid"]}" stroke-width="1"/>{lines}{dot}</svg>'
    )


_NPS_LINES = (("nps", "NPS", COLORS["blind"]), ("nps_strict", "Strict NPS", COLORS["muted"]))
_SHARE_LINES = (
    ("account_coverage", "Account coverage", COLORS["covered"]),
    ("revenue_coverage", "Revenue coverage", COLORS["blind"]),
    ("closed_loop_rate", "Closed-loop rate", COLORS["promoter"]),
)


def trend_figure(history: ReportHistory | None) -> Figure:
    """Portfolio NPS and strict NPS (left), coverage and closed-loop rate (right) over time."""
    figure = Figure(figsize=(9.0, 3.0))
    left, right = figure.subplots(1, 2)
    if history is None or not history.portfolio:
        for ax in (left, right):
            ax.text(
                0.5,
                0.5,
                "No history yet: the agent records one point per cycle;\n"
                "ax-agent history backfill rebuilds the past from the answers.",
                ha="center",
                va="center",
                color=COLORS["muted"],
                fontsize=8,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
        return figure
    stamps = [at for at, _ in history.portfolio]
    for key, label, color in _NPS_LINES:
        _line(left, stamps, [f.get(key) for _, f in history.portfolio], label, color)
    left.set_title("NPS over time", loc="left")
    left.set_ylim(-100, 100)
    left.axhline(0, color=COLORS["grid"], linewidth=0.8)
    for key, label, color in _SHARE_LINES:
        values = [f.get(key) for _, f in history.portfolio]
        _line(right, stamps, [None if v is None else 100 * v for v in values], label, color)
    right.set_title("Coverage and closed loop over time", loc="left")
    right.set_ylim(0, 100)
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.0f} %"))
    for ax in (left, right):
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib leaves it untyped
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize=7.5)
    return figure


def _line(
    ax: Axes, stamps: Sequence[datetime], values: Sequence[Any], label: str, color: str
) -> None:
    ys = [float("nan") if v is None else float(v) for v in values]
    ax.plot(
        stamps,  # type: ignore[arg-type]  # matplotlib's date converter takes datetimes
        ys,
        label=label,
        color=color,
        linewidth=1.6,
        marker="o" if len(ys) < 30 else None,
        markersize=3,
    )

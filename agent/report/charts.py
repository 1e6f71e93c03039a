"""The report's charts as matplotlib figures, each from the document's own numbers.

Every label on a chart is made by ``agent.report.present.fmt``, the one formatting helper,
so a chart never shows a number rounded differently from the tables beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from agent.core.document import DriverMetrics, PortfolioMetrics
from agent.core.plan import CoveragePlan
from agent.report.figures import TIER_ROWS, TierRow, UpsellPoint, driver_label
from agent.report.present import fmt
from agent.report.render import COLORS

__all__ = [
    "Weighting",
    "coverage_figure",
    "driver_figure",
    "drivers_pair_figure",
    "path_to_target",
    "plan_figure",
    "tier_figure",
    "upsell_dot_names",
    "upsell_figure",
]

Weighting = Literal["count", "revenue"]
_WIDTH = 7.2  # inches: two side by side on a laptop, one per row in print


def coverage_figure(p: PortfolioMetrics) -> Figure:
    """The iceberg: above the waterline what feedback covers, below what it does not."""
    figure = Figure(figsize=(_WIDTH * 0.75, 3.6))
    ax = figure.add_subplot()
    if p.accounts == 0:
        return _empty(ax, "no accounts in the CRM")
    blind_accounts = p.accounts - p.accounts_with_feedback
    blind_revenue = p.total_revenue - p.covered_revenue
    shares = [p.account_coverage or 0.0, p.revenue_coverage or 0.0]
    above = [
        f"{p.accounts_with_feedback} with feedback\n{fmt(p.account_coverage, percent=True)}",
        f"{fmt(p.covered_revenue, decimals=0)} covered\n{fmt(p.revenue_coverage, percent=True)}",
    ]
    below = [
        f"{blind_accounts} without feedback\n{_complement(p.account_coverage)}",
        f"{fmt(blind_revenue, decimals=0)} unseen\n{_complement(p.revenue_coverage)}",
    ]
    top = max(shares) + 0.4  # one scale above and below the waterline, no empty sky
    bottom = max(1 - s for s in shares) + 0.4
    ax.axhspan(-bottom, 0, color=COLORS["sea"], zorder=0)
    bars_up = ax.bar([0, 1], shares, width=0.55, color=COLORS["covered"], zorder=2)
    ax.bar([0, 1], [s - 1 for s in shares], width=0.55, color=COLORS["blind"], zorder=2)
    ax.bar_label(bars_up, labels=above, padding=3, fontsize=8.5)
    for x, (share, label) in enumerate(zip(shares, below, strict=True)):
        # below the bar's end, even when it has no height (100 % coverage): bar_label
        # would put a zero-height bar's label above the waterline, over the covered bar
        ax.annotate(
            label,
            (x, share - 1),
            xytext=(0, -3),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8.5,
        )
    ax.axhline(0, color=COLORS["blind"], linewidth=1.5, zorder=3)
    ax.text(1.42, 0.02, "waterline", color=COLORS["blind"], ha="right", va="bottom", fontsize=8)
    ax.set_xticks([0, 1], [f"Accounts ({p.accounts})", "Revenue"])
    ax.set_xlim(-0.6, 1.45)
    ax.set_ylim(-bottom, top)
    ax.set_yticks([])
    ax.spines[["left", "bottom"]].set_visible(False)
    ax.tick_params(axis="x", length=0)
    ax.set_title("Coverage: what the feedback sees, and what it does not", loc="left")
    return figure


def _complement(share: float | None) -> str:
    return fmt(None if share is None else 1 - share, percent=True)


def driver_figure(drivers: Sequence[DriverMetrics], weighting: Weighting) -> Figure:
    """One driver chart: promoters right, detractors left, by answers or by revenue."""
    figure = Figure(figsize=(_WIDTH * 0.7, _driver_height(drivers)))
    _draw_drivers(figure.add_subplot(), drivers, weighting)
    return figure


def drivers_pair_figure(drivers: Sequence[DriverMetrics]) -> Figure:
    """Both driver charts side by side in one image (the Slack digest's picture)."""
    figure = Figure(figsize=(_WIDTH * 1.4, _driver_height(drivers)), layout="constrained")
    left, right = figure.subplots(1, 2, sharey=True)
    _draw_drivers(left, drivers, "count")
    _draw_drivers(right, drivers, "revenue")
    return figure


def _driver_height(drivers: Sequence[DriverMetrics]) -> float:
    return 1.4 + 0.42 * max(len(drivers), 2)


def _draw_drivers(ax: Axes, drivers: Sequence[DriverMetrics], weighting: Weighting) -> None:
    by_revenue = weighting == "revenue"
    ax.set_title(
        "By revenue behind the answers" if by_revenue else "By number of answers", loc="left"
    )
    if not drivers:
        _empty(ax, "no counted answers")
        return
    promoters: list[float] = [d.promoter_revenue if by_revenue else d.promoters for d in drivers]
    detractors: list[float] = [d.detractor_revenue if by_revenue else d.detractors for d in drivers]
    rows = list(range(len(drivers)))[::-1]  # the document's order, top to bottom
    pos = ax.barh(rows, promoters, color=COLORS["promoter"], height=0.6, label="promoters")
    neg = ax.barh(
        rows, [-v for v in detractors], color=COLORS["detractor"], height=0.6, label="detractors"
    )
    ax.bar_label(pos, labels=[fmt(v, decimals=0) for v in promoters], padding=3)
    # a zero-width detractor bar would put its "0" on top of the promoter bar
    ax.bar_label(neg, labels=[fmt(v, decimals=0) if v else "" for v in detractors], padding=3)
    reach = max([*promoters, *detractors]) or 1.0
    ax.set_xlim(-reach * 1.45, reach * 1.45)
    ax.axvline(0, color=COLORS["ink"], linewidth=0.8)
    ax.set_yticks(rows, [driver_label(d) for d in drivers])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=not by_revenue))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(abs(v), decimals=0)))
    ax.tick_params(axis="x", labelsize=7.5)
    ax.set_xlabel("revenue" if by_revenue else "answers")
    _legend_below(ax)


def tier_figure(rows: Sequence[TierRow]) -> Figure:
    """The tier map: one row per top account, a cell per tier coloured by its NPS."""
    figure = Figure(figsize=(_WIDTH, 1.3 + 0.3 * max(len(rows), 2)))
    ax = figure.add_subplot()
    ax.set_title("Which tiers answered: NPS (respondents), top accounts by revenue", loc="left")
    if not rows:
        return _empty(ax, "no accounts in the CRM")
    colormap = mpl.colormaps["RdYlGn"]
    for i, row in enumerate(rows):
        for j, tier in enumerate(TIER_ROWS):
            nps = row.tier_nps.get(tier)
            colour = COLORS["none"] if nps is None else colormap((nps + 100) / 200)
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colour, edgecolor="white", lw=1.5))
            answered = row.tier_respondents.get(tier, 0)
            text = "no answer" if nps is None else f"{fmt(nps)} ({answered})"
            ax.text(j + 0.5, i + 0.5, text, **_cell(nps))
        _row_notes(ax, i, row)
    ax.set_xlim(0, len(TIER_ROWS))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([j + 0.5 for j in range(len(TIER_ROWS))], [t.title() for t in TIER_ROWS])
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.5 for i in range(len(rows))], [_short(r.account.name) for r in rows])
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    return figure


def _cell(nps: float | None) -> dict[str, Any]:
    if nps is None:
        return {"ha": "center", "va": "center", "fontsize": 7.5, "color": COLORS["muted"]}
    dark = abs(nps) > 60
    return {"ha": "center", "va": "center", "color": "white" if dark else COLORS["ink"]}


def _row_notes(ax: Axes, i: int, row: TierRow) -> None:
    """Revenue beside each row; a misaligned account is outlined and labelled."""
    ax.text(3.08, i + 0.5, fmt(row.account.revenue, decimals=0), va="center", fontsize=8)
    if row.misaligned:
        ax.add_patch(Rectangle((0, i), 3, 1, fill=False, edgecolor=COLORS["ink"], lw=1.8, zorder=3))
        ax.text(3.75, i + 0.5, "misaligned", va="center", color=COLORS["detractor"], weight="bold")


def _short(name: str, limit: int = 30) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def upsell_figure(points: Sequence[UpsellPoint], min_nps: float, max_share: float) -> Figure:
    """NPS against revenue as a share of potential; the top-left corner is the upsell."""
    figure = Figure(figsize=(_WIDTH, 4.6))
    ax = figure.add_subplot()
    ax.set_title("Upsell quadrant: account NPS against revenue / potential", loc="left")
    if not points:
        return _empty(ax, "no account has both an NPS and a revenue potential")
    largest = max(p.account.revenue for p in points) or 1.0
    for candidate in (False, True):
        chosen = [p for p in points if p.account.upsell_candidate is candidate]
        if not chosen:
            continue
        dots = ax.scatter(
            [p.realised for p in chosen],
            [p.nps for p in chosen],
            s=[24 + 260 * math.sqrt(p.account.revenue / largest) for p in chosen],
            color=COLORS["promoter"] if candidate else COLORS["passive"],
            alpha=0.75,
            edgecolors="white",
            label="upsell candidate" if candidate else "other accounts",
            zorder=3,
        )
        dots.set_gid(_UPSELL_GIDS[candidate])  # so each dot can be named (``upsell_dot_names``)
    _quadrants(ax, min_nps, max_share, max(1.0, *(p.realised for p in points)) * 1.08)
    _name_candidates(ax, points)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v, percent=True, decimals=0)))
    ax.set_xlabel("revenue as a share of revenue potential")
    ax.set_ylabel("account NPS")
    _legend_below(ax)
    return figure


_UPSELL_GIDS = {False: "upsell-others", True: "upsell-candidates"}


def upsell_dot_names(points: Sequence[UpsellPoint]) -> dict[str, list[str]]:
    """Each dot group's account names, in the order ``upsell_figure`` draws the dots."""
    return {
        gid: [
            f"{p.account.name}: NPS {fmt(p.nps)}, {fmt(p.realised, percent=True, decimals=0)}"
            " of potential"
            for p in points
            if p.account.upsell_candidate is candidate
        ]
        for candidate, gid in _UPSELL_GIDS.items()
    }


def path_to_target(plan: CoveragePlan) -> tuple[list[int], list[float], list[float]]:
    """Contacts surveyed so far, and the coverage planned and expected after each account.

    Starts at (0, coverage now); each planned account adds its contacts and its share of
    revenue, in full (planned) or times its chance to answer (expected).
    """
    now = plan.coverage_now or 0.0
    xs, planned, expected = [0], [now], [now]
    for account in plan.accounts:
        share = account.cumulative_coverage - planned[-1]
        xs.append(xs[-1] + len(account.contacts))
        planned.append(account.cumulative_coverage)
        expected.append(expected[-1] + share * account.chance)
    return xs, planned, expected


def plan_figure(plan: CoveragePlan | None) -> Figure:
    """The path to the target: revenue coverage against the contacts to survey."""
    figure = Figure(figsize=(_WIDTH, 4.0))
    ax = figure.add_subplot()
    ax.set_title("Path to the target: revenue coverage per contact surveyed", loc="left")
    if plan is None or plan.coverage_now is None:
        return _empty(ax, "no coverage plan: no revenue in the CRM")
    xs, planned, expected = path_to_target(plan)
    ax.step(xs, planned, where="post", color=COLORS["blind"], label="planned (all answer)")
    ax.step(xs, expected, where="post", color=COLORS["promoter"], label="expected (forecast)")
    ax.axhline(plan.target, color=COLORS["detractor"], linestyle="--", linewidth=0.9)
    ax.text(0, plan.target, f" target {fmt(plan.target, percent=True, decimals=0)}", va="bottom")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, max(xs[-1], 1))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v, percent=True, decimals=0)))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("contacts to survey, largest uncovered accounts first")
    ax.set_ylabel("revenue coverage")
    ax.grid(color=COLORS["grid"], linewidth=0.5)
    _legend_below(ax)
    return figure


def _legend_below(ax: Axes) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)


def _quadrants(ax: Axes, min_nps: float, max_share: float, right: float) -> None:
    ax.set_xlim(0, right)
    ax.set_ylim(-132, 132)
    ax.set_yticks(range(-100, 101, 50))
    ax.axhline(min_nps, color=COLORS["muted"], linestyle="--", linewidth=0.9)
    ax.axvline(max_share, color=COLORS["muted"], linestyle="--", linewidth=0.9)
    ax.grid(color=COLORS["grid"], linewidth=0.5)
    corners = (  # above and below the NPS range, so no dot hides them
        (0.01, 118, "left", "upsell: happy, room to grow"),
        (0.99, 118, "right", "advocates"),
        (0.01, -118, "left", "fix first"),
        (0.99, -118, "right", "protect the revenue"),
    )
    for x, y, ha, text in corners:
        ax.text(
            x,
            y,
            text,
            transform=ax.get_yaxis_transform(),
            ha=ha,
            va="center",
            color=COLORS["muted"],
        )


def _name_candidates(ax: Axes, points: Sequence[UpsellPoint], limit: int = 8) -> None:
    """Name the candidates with the most potential left, so the chart reads alone."""
    candidates = [p for p in points if p.account.upsell_candidate]
    candidates.sort(key=lambda p: p.account.revenue - p.potential)
    for i, p in enumerate(candidates[:limit]):
        ax.annotate(
            _short(p.account.name, 24),
            (p.realised, p.nps),
            xytext=(6, 5 if i % 2 == 0 else -11),
            textcoords="offset points",
            fontsize=7.5,
        )


def _empty(ax: Axes, message: str) -> Figure:
    ax.text(0.5, 0.5, message, ha="center", va="center", color=COLORS["muted"])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.spines[:].set_visible(False)
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    return figure

"""The portfolio report: one self-contained HTML file from the metrics document.

No script, no external stylesheet, font or image: CSS is inlined and every chart is
an inline ``<svg>``, so the file opens offline, mails as one attachment and prints.
Jinja2 autoescapes every value; chart SVG comes from matplotlib, which escapes its
own text, and is the only markup marked safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from agent.core.contract import MetricsConfig
from agent.core.document import MetricsDocument
from agent.core.models import Account
from agent.core.plan import CoveragePlan
from agent.report import charts, figures, trends
from agent.report.links import record_link
from agent.report.present import fmt, readable_date, readable_time
from agent.report.render import name_marks, to_svg

__all__ = ["CHART_IDS", "Chart", "ReportOptions", "build_report", "render_charts"]

#: The report's charts, in page order; each is exactly one ``<svg>`` in the page.
CHART_IDS: tuple[str, ...] = (
    "trend",
    "coverage",
    "drivers-count",
    "drivers-revenue",
    "tiers",
    "upsell",
    "plan",
)


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """What the document alone does not say: links, list lengths, labels."""

    record_url: str | None = None
    top_accounts: int = 25
    list_limit: int = 100
    upsell_dots: int = 600
    title: str = "Account Experience report"
    source: str = ""
    config: MetricsConfig = field(default_factory=MetricsConfig)
    #: The coverage plan (``ax-agent plan coverage``); the chart says when there is none.
    plan: CoveragePlan | None = None
    #: The stored figure history: trend lines, movers, sparklines (none: said so).
    history: trends.ReportHistory | None = None


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    svg: Markup


_ENV = Environment(
    loader=PackageLoader("agent.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters["fmt"] = fmt
_ENV.filters["when"] = readable_time
_ENV.filters["day"] = readable_date


def render_charts(
    doc: MetricsDocument, accounts: Sequence[Account], options: ReportOptions
) -> dict[str, Chart]:
    """Every chart of the report as inline SVG, keyed by its id."""
    cfg = options.config
    tiers = figures.tier_rows(doc, options.top_accounts)
    points = figures.plotted_points(figures.upsell_points(doc, accounts), options.upsell_dots)
    builds = {
        "trend": ("Trends", lambda: trends.trend_figure(options.history)),
        "coverage": ("Coverage iceberg", lambda: charts.coverage_figure(doc.portfolio)),
        "drivers-count": (
            "Drivers by answers",
            lambda: charts.driver_figure(doc.drivers, "count"),
        ),
        "drivers-revenue": (
            "Drivers by revenue",
            lambda: charts.driver_figure(doc.drivers, "revenue"),
        ),
        "tiers": ("Tier coverage of the top accounts", lambda: charts.tier_figure(tiers)),
        "upsell": (
            "Upsell quadrant",
            lambda: charts.upsell_figure(points, cfg.upsell_min_nps, cfg.upsell_max_revenue_share),
        ),
        "plan": ("Path to the target", lambda: charts.plan_figure(options.plan)),
    }
    svgs = {chart_id: to_svg(build, chart_id, title) for chart_id, (title, build) in builds.items()}
    svgs["upsell"] = name_marks(svgs["upsell"], charts.upsell_dot_names(points))
    return {
        chart_id: Chart(chart_id, builds[chart_id][0], Markup(svg))  # noqa: S704  # matplotlib and name_marks escape their text
        for chart_id, svg in svgs.items()
    }


def build_report(
    doc: MetricsDocument,
    accounts: Sequence[Account] = (),
    options: ReportOptions | None = None,
) -> str:
    """The whole report page. ``accounts`` supply revenue potential for the upsell view."""
    options = options or ReportOptions()
    placed = figures.upsell_points(doc, accounts)
    history = options.history
    drops, rises = trends.movers(doc, history) if history is not None else ([], [])
    template = _ENV.get_template("report.html.j2")
    return template.render(
        doc=doc,
        p=doc.portfolio,
        options=options,
        headlines=figures.headline_figures(doc),
        task_cards=figures.task_cards(doc.tasks) if doc.tasks is not None else [],
        charts=render_charts(doc, accounts, options),
        tier_rows=figures.tier_rows(doc, options.top_accounts),
        potential={a.id: a.revenue_potential for a in accounts},
        upsell=[a for a in doc.accounts if a.upsell_candidate],
        placed=len(placed),
        plotted=min(len(placed), options.upsell_dots),
        plan=options.plan,
        at_risk=figures.at_risk_accounts(doc),
        overdue=figures.overdue_accounts(doc),
        at_risk_reason=figures.at_risk_reason,
        driver_label=figures.driver_label,
        link=lambda account_id: record_link(options.record_url, account_id),
        drops=drops,
        rises=rises,
        mover_days=trends.MOVER_DAYS,
        spark_days=trends.SPARK_DAYS,
        spark=lambda account: (
            trends.account_spark(account, history, doc.as_of) if history is not None else ""
        ),
    )

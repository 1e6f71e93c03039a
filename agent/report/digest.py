"""The weekly digest's content: the headline figures as chat text, the driver chart as PNG.

Vendor-neutral: ``weekly_digest`` and ``driver_chart`` build the ``agent.core.messages``
values the Slack delivery (``connectors.slack.report``) only carries.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.core.document import DriverMetrics, MetricsDocument
from agent.core.messages import Chart, Digest
from agent.report.charts import drivers_pair_figure
from agent.report.figures import digest_figures
from agent.report.render import to_png

__all__ = ["DIGEST_TITLE", "digest_text", "driver_chart", "drivers_png", "weekly_digest"]

DIGEST_TITLE = "Account Experience weekly digest"
_ALT_TEXT = (
    "Driver chart: promoters and detractors per driver, counted by answers (left) "
    "and weighted by the revenue behind them (right)."
)


def weekly_digest(doc: MetricsDocument, *, title: str = DIGEST_TITLE) -> Digest:
    """The digest of ``doc``: the headline figures as text, the driver chart beside them."""
    return Digest(title=title, text=digest_text(doc, title=title), chart=driver_chart(doc.drivers))


def driver_chart(drivers: Sequence[DriverMetrics]) -> Chart:
    """The driver chart as a picture to post, with its alternative text."""
    return Chart(png=drivers_png(drivers), alt_text=_ALT_TEXT)


def digest_text(doc: MetricsDocument, *, title: str = DIGEST_TITLE) -> str:
    """Slack mrkdwn: a bold title, then one bullet per headline figure with its context,
    and the task closed-loop rate where the agent keeps CRM tasks."""
    when = doc.as_of.strftime("%Y-%m-%d %H:%M %Z").strip()
    lines = [f"*{_escape(title)}* (figures as of {when})"]
    for h in digest_figures(doc):
        lines.append(f"• {h.label}: *{_escape(h.text)}* ({_escape(h.note)})")
    return "\n".join(lines)


def drivers_png(drivers: Sequence[DriverMetrics]) -> bytes:
    """Both driver charts (by answers, by revenue) side by side, as one PNG image."""
    return to_png(lambda: drivers_pair_figure(drivers), "drivers-digest")


def _escape(text: str) -> str:
    """Slack's three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

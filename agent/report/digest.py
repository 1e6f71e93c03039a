"""The weekly digest's content: the headline figures as chat text, the driver chart as PNG.

Vendor-neutral: the Slack delivery (``connectors.slack.report``) only carries these.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.core.document import DriverMetrics, MetricsDocument
from agent.report.charts import drivers_pair_figure
from agent.report.figures import headline_figures
from agent.report.render import to_png

__all__ = ["DIGEST_TITLE", "digest_text", "drivers_png"]

DIGEST_TITLE = "Account Experience weekly digest"


def digest_text(doc: MetricsDocument, *, title: str = DIGEST_TITLE) -> str:
    """Slack mrkdwn: a bold title, then one bullet per headline figure with its context."""
    when = doc.as_of.strftime("%Y-%m-%d %H:%M %Z").strip()
    lines = [f"*{_escape(title)}* (figures as of {when})"]
    for h in headline_figures(doc):
        lines.append(f"• {h.label}: *{_escape(h.text)}* ({_escape(h.note)})")
    return "\n".join(lines)


def drivers_png(drivers: Sequence[DriverMetrics]) -> bytes:
    """Both driver charts (by answers, by revenue) side by side, as one PNG image."""
    return to_png(lambda: drivers_pair_figure(drivers), "drivers-digest")


def _escape(text: str) -> str:
    """Slack's three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

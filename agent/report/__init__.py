"""The portfolio report (one self-contained HTML file) and the digest's figures.

The names below load their modules when first used: the chart library (about 26 MB and
half a second to import) comes with the report and the digest's chart only, not with
``agent.report.figures``, which the alerts read for every digest message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.core.lazy import lazy_names

if TYPE_CHECKING:
    from agent.report.digest import digest_text, drivers_png
    from agent.report.html import CHART_IDS, ReportOptions, build_report
    from agent.report.links import record_link, record_url_template

__all__ = [
    "CHART_IDS",
    "ReportOptions",
    "build_report",
    "digest_text",
    "drivers_png",
    "record_link",
    "record_url_template",
]

_HOMES = {
    "CHART_IDS": "agent.report.html",
    "ReportOptions": "agent.report.html",
    "build_report": "agent.report.html",
    "digest_text": "agent.report.digest",
    "drivers_png": "agent.report.digest",
    "record_link": "agent.report.links",
    "record_url_template": "agent.report.links",
}

__getattr__ = lazy_names(__name__, _HOMES)

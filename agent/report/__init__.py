"""The portfolio report (one self-contained HTML file) and the digest's figures."""

from __future__ import annotations

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

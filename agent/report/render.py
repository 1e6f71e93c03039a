"""Turning a matplotlib figure into inline SVG (for the report) or PNG (for Slack).

Figures are built on ``matplotlib.figure.Figure`` directly, never through pyplot: no
GUI backend, no global figure registry. Text stays text in the SVG (searchable,
selectable, small); each chart gets its own id salt so the ids of several SVGs
inlined in one page never collide, and the output is byte-for-byte repeatable.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html import escape
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

__all__ = ["COLORS", "chart_style", "name_marks", "to_png", "to_svg"]

#: One palette for every chart: promoters green, detractors red, passives grey.
COLORS = {
    "promoter": "#1a9850",
    "passive": "#9e9e9e",
    "detractor": "#d73027",
    "covered": "#9ecae1",
    "blind": "#08519c",
    "sea": "#eaf2fa",
    "ink": "#222222",
    "muted": "#6b6b6b",
    "grid": "#dddddd",
    "none": "#eeeeee",
}

_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9.0,
    "text.parse_math": False,  # account names may hold "$": never read them as TeX
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#888888",
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.frameon": False,
    "figure.facecolor": "white",
}

_NO_METADATA_SVG = {"Date": None, "Creator": None, "Format": None, "Type": None}


@contextmanager
def chart_style(chart_id: str) -> Iterator[None]:
    """The shared look, active while a chart is built and saved (fonts bind at creation)."""
    params = dict(_STYLE)
    params["svg.hashsalt"] = chart_id
    with mpl.rc_context(params):
        yield


def to_svg(build: Callable[[], Figure], chart_id: str, label: str) -> str:
    """Build the figure under the shared style; return an ``<svg>`` element to inline."""
    with chart_style(chart_id):
        figure = build()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata=_NO_METADATA_SVG, bbox_inches="tight")
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    attributes = f'<svg role="img" aria-label="{escape(label)}" data-chart="{escape(chart_id)}"'
    return attributes + svg[len("<svg") :]


def name_marks(svg: str, names: dict[str, list[str]]) -> str:
    """Give each mark of a group (``<g id=GID>``) a ``<title>``: its name on hover.

    ``names[gid]`` lists the names in drawing order; matplotlib writes one ``<path>``
    (or ``<use>``) per mark in that order.
    """
    for gid, labels in names.items():
        start = svg.find(f'<g id="{gid}">')
        if start < 0 or not labels:
            continue
        end = _group_end(svg, start)
        queue = iter(labels)

        def titled(mark: re.Match[str], queue: Iterator[str] = queue) -> str:
            label = next(queue, None)
            if label is None:
                return mark.group(0)
            return f"{mark.group(1)}><title>{escape(label)}</title></{mark.group(2)}>"

        # marks drawn once and reused sit in <defs>; the dots are the marks outside it
        parts = _DEFS.split(svg[start:end])
        group = "".join(
            part if _DEFS.fullmatch(part) else _MARK.sub(titled, part) for part in parts
        )
        svg = svg[:start] + group + svg[end:]
    return svg


def _group_end(svg: str, start: int) -> int:
    """The index just past the ``</g>`` closing the ``<g>`` opened at ``start``."""
    depth = 0
    for tag in _G_TAG.finditer(svg, start):
        depth += -1 if tag.group(0) == "</g>" else 1
        if depth == 0:
            return tag.end()
    return len(svg)


_G_TAG = re.compile(r"<g\b|</g>")
_DEFS = re.compile(r"(<defs>.*?</defs>)", re.DOTALL)
_MARK = re.compile(r"(<(path|use)\b[^>]*?)\s*/>", re.DOTALL)


def to_png(build: Callable[[], Figure], chart_id: str, *, dpi: int = 144) -> bytes:
    """The same figure as a PNG (for chat tools that show images, not SVG)."""
    with chart_style(chart_id):
        figure = build()
        buffer = io.BytesIO()
        figure.savefig(
            buffer, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight"
        )
    return buffer.getvalue()

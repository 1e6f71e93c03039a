"""Durations as admins write them in rule files: ``30m``, ``48h``, ``7d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DurationError", "format_duration", "parse_duration"]

_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
#: Longer than any sensible alerting interval; rejects typos like ``48000d``.
_MAX = timedelta(days=3660)


class DurationError(ValueError):
    """Not a duration this file format accepts."""


def parse_duration(text: str) -> timedelta:
    """``"1d12h"`` -> 36 hours. Units: s, m, h, d, w; at least one part; positive."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise DurationError(
            f"{text!r} is not a duration; write a number and a unit (s, m, h, d, w), e.g. 48h or 7d"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    value = timedelta(seconds=seconds)
    if value <= timedelta(0):
        raise DurationError(f"{text!r} must be longer than zero")
    if value > _MAX:
        raise DurationError(f"{text!r} is longer than ten years")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling: 48 h -> ``2d``, 90 min -> ``1h30m``."""
    seconds = int(value.total_seconds())
    parts: list[str] = []
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"

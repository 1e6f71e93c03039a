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
_MAX_SECONDS = int(_MAX.total_seconds())
_MAX_DIGITS = len(str(_MAX_SECONDS))


class DurationError(ValueError):
    """Not a duration this file format accepts."""


def parse_duration(text: str) -> timedelta:
    """``"1d12h"`` -> 36 hours. Units: s, m, h, d, w; at least one part; positive."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise DurationError(
            f"{_shown(text)} is not a duration; "
            "write a number and a unit (s, m, h, d, w), e.g. 48h or 7d"
        )
    parts = _PART.findall(text)
    if any(len(n.lstrip("0")) > _MAX_DIGITS for n, _ in parts):
        seconds = _MAX_SECONDS + 1  # too many digits to be in range (and to convert cheaply)
    else:
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise DurationError(f"{_shown(text)} must be longer than zero")
    if seconds > _MAX_SECONDS:  # compared as a number: a timedelta would overflow first
        raise DurationError(
            f"{_shown(text)} is out of range; a duration is from 1s to {_MAX.days}d (ten years)"
        )
    return timedelta(seconds=seconds)


def _shown(text: object) -> str:
    """The value as quoted in an error, cut so a huge value does not flood the message."""
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


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

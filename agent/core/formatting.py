"""How a value reads in a message: numbers rounded by the one rule, times in UTC, n/a for null.

Pure functions shared by rule templates, the console and the Slack blocks, so an alert
reads the same wherever it is shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent.core.rounding import format_number

__all__ = ["FORMATS", "format_value"]


def _num(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return _fixed(value, 1)
    return f"{int(value):,}"


def _fixed(value: Any, decimals: int) -> str:
    """The one rounding rule (half away from zero), as the CRM field gets it."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format_number(value, decimals)


def _signed(value: Any) -> str:
    """A change with its sign (``+3.5``, ``-0.5``), rounded by the one rule."""
    text = _fixed(value, 1)
    return text if text.startswith("-") else f"+{text}"


def _pct(value: Any) -> str:
    return f"{_fixed(100 * value, 0)} %"


def _time(fmt: str) -> Callable[[Any], str]:
    def run(value: Any) -> str:
        return value.strftime(fmt) if isinstance(value, datetime) else str(value)

    return run


FORMATS: dict[str, Callable[[Any], str]] = {
    "money": lambda v: _fixed(v, 0),
    "num": lambda v: _fixed(v, 1),
    "int": lambda v: _fixed(v, 0),
    "signed": _signed,
    "pct": _pct,
    "date": _time("%Y-%m-%d"),
    "datetime": _time("%Y-%m-%d %H:%M UTC"),
    "upper": lambda v: str(v).upper(),
    "lower": lambda v: str(v).lower(),
}


def format_value(value: Any, fmt: str | None = None) -> str:  # noqa: PLR0911  # one per kind
    """How a value reads in a message: null -> n/a, bools yes/no, lists joined."""
    if value is None:
        return "n/a"
    if fmt is not None:
        return FORMATS[fmt](value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return _num(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, list | tuple | frozenset):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)

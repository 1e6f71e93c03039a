"""Message templates: text with ``{expression}`` and ``{expression | format}`` parts.

Each part is compiled with the same checked expression compiler as ``when``, so a
template reads exactly the fields a condition can read. ``{{`` and ``}}`` are
literal braces. Formats: ``money`` (1,234,567), ``num`` (one decimal), ``int``,
``signed`` (+3.2 / -1.0, for deltas),
``pct`` (0.42 -> 42 %), ``date``, ``datetime``, ``upper``, ``lower``. A null
value shows as ``n/a``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.core.rounding import format_number
from agent.rules.expr import CompiledExpr, ExprError, compile_expr
from agent.rules.fields import Scope

__all__ = ["FORMATS", "Template", "TemplateError", "compile_template", "format_value"]


class TemplateError(ExprError):
    """A template problem; ``column`` counts from the template's first character."""


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


_FORMAT_KINDS: dict[str, str] = {
    "money": "num",
    "num": "num",
    "int": "num",
    "signed": "num",
    "pct": "num",
    "date": "time",
    "datetime": "time",
    "upper": "str",
    "lower": "str",
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


@dataclass(frozen=True, slots=True)
class _Part:
    literal: str
    expr: CompiledExpr | None = None
    fmt: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    parts: tuple[_Part, ...]

    def render(self, r: Any, a: Any, p: Any, now: datetime, h: Any = None) -> str:
        """The text for one subject; ``h`` is the history change functions read."""
        out: list[str] = []
        for part in self.parts:
            out.append(part.literal)
            if part.expr is not None:
                out.append(format_value(part.expr.fn(r, a, p, now, h), part.fmt))
        return "".join(out)


def compile_template(text: str, scope: Scope) -> Template:
    """Split and compile; raise ``TemplateError`` at the offending column."""
    parts: list[_Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith(("{{", "}}"), i):
            literal.append(ch)
            i += 2
        elif ch == "{":
            end = text.find("}", i)
            if end < 0:
                raise TemplateError("'{' is never closed (write {{ for a literal brace)", 1, i + 1)
            parts.append(_Part("".join(literal), *_field_part(text[i + 1 : end], scope, i + 1)))
            literal = []
            i = end + 1
        elif ch == "}":
            raise TemplateError("'}' without '{' (write }} for a literal brace)", 1, i + 1)
        else:
            literal.append(ch)
            i += 1
    parts.append(_Part("".join(literal)))
    return Template(text=text, parts=tuple(parts))


def _field_part(inner: str, scope: Scope, offset: int) -> tuple[CompiledExpr, str | None]:
    expr_text, _, fmt = inner.partition("|")
    fmt_name = fmt.strip() or None
    fmt_column = offset + len(expr_text) + 2 + len(fmt) - len(fmt.lstrip())
    if fmt_name is not None and fmt_name not in FORMATS:
        raise TemplateError(
            f"unknown format '{fmt_name}'; known: {', '.join(sorted(FORMATS))}",
            1,
            fmt_column,
        )
    try:
        compiled = compile_expr(expr_text, scope, expect=None)
    except ExprError as exc:
        lead = len(expr_text) - len(expr_text.lstrip())
        raise TemplateError(exc.message, 1, offset + lead + exc.column) from None
    if fmt_name is not None and compiled.type.kind not in (_FORMAT_KINDS[fmt_name], "null"):
        raise TemplateError(
            f"format '{fmt_name}' needs {_FORMAT_KINDS[fmt_name]}, the value is {compiled.type}",
            1,
            fmt_column,
        )
    return compiled, fmt_name

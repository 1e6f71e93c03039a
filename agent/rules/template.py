"""Message templates: text with ``{expression}`` and ``{expression | format}`` parts.

Each part is compiled with the same checked expression compiler as ``when``, so a
template reads exactly the fields a condition can read. ``{{`` and ``}}`` are
literal braces. Formats: ``money`` (1,234,567), ``num`` (one decimal), ``int``,
``signed`` (+3.2 / -1.0, for deltas),
``pct`` (0.42 -> 42 %), ``date``, ``datetime``, ``upper``, ``lower``. A null
value shows as ``n/a``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.core.formatting import FORMATS, format_value
from agent.rules.expr import CompiledExpr, ExprError, compile_expr
from agent.rules.fields import Scope

__all__ = ["FORMATS", "Template", "TemplateError", "compile_template", "format_value"]


class TemplateError(ExprError):
    """A template problem; ``column`` counts from the template's first character."""


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


@dataclass(frozen=True, slots=True)
class _Part:
    literal: str
    expr: CompiledExpr | None = None
    fmt: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    parts: tuple[_Part, ...]

    @property
    def history_keys(self) -> frozenset[str]:
        """The account figures its expressions read from the history."""
        return frozenset(k for part in self.parts if part.expr for k in part.expr.history_keys)

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

"""One rounding rule for every figure a person or a CRM sees: half away from zero.

Python's ``round`` and ``format(x, ".0f")`` round half to even (72.5 -> 72) while the
CRM write rounds half away from zero (72.5 -> 73). Every place that turns a figure
into text or into a CRM value goes through here, so the field, the table, the Slack
text and the report agree.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["format_number", "round_half_away"]


def round_half_away(value: float | int | Decimal | str, decimals: int = 0) -> Decimal:
    """``value`` rounded to ``decimals`` places, ties away from zero (72.5 -> 73, -0.5 -> -1).

    A float is read through its shortest repr (``str``), so 0.125 is the decimal 0.125
    a person reads, not the binary value just below it.
    """
    exact = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    if not exact.is_finite():
        raise InvalidOperation(f"{value!r} is not a finite number")
    # ROUND_HALF_UP in ``decimal`` rounds ties away from zero, for negatives too.
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def format_number(value: float | int | Decimal, decimals: int = 0, *, group: bool = True) -> str:
    """``value`` as text with ``decimals`` places, rounded half away from zero, grouped."""
    rounded = round_half_away(value, decimals)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0"
    return f"{rounded:{',' if group else ''}.{decimals}f}"

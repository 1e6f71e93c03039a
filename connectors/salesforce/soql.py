"""Building the few SOQL statements the connector sends; values are always escaped."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

__all__ = ["check_name", "datetime_literal", "in_list", "quote", "select"]

#: An API name, or a relationship path such as ``Owner.Email``.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def check_name(name: str) -> str:
    """``name`` if it is a valid API name or relationship path; else ``ValueError``."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a Salesforce field or object API name")
    return name


def quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def datetime_literal(moment: datetime) -> str:
    """A SOQL dateTime literal (unquoted, UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(quote(v) for v in values) + ")"


def select(
    sobject: str,
    fields: Iterable[str],
    *,
    since: datetime | None = None,
    where: Sequence[str] = (),
) -> str:
    """``SELECT … FROM sobject [WHERE …]``; fields de-duplicated case-insensitively."""
    conditions = list(where)
    if since is not None:
        conditions.append(f"SystemModstamp >= {datetime_literal(since)}")
    names = ", ".join(check_name(f) for f in _unique(fields))
    # Names are checked against the API-name pattern and values quoted: no injection.
    soql = f"SELECT {names} FROM {check_name(sobject)}"  # noqa: S608
    return f"{soql} WHERE {' AND '.join(conditions)}" if conditions else soql


def _unique(fields: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in fields:
        key = name.casefold()
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out

"""One redaction step for every message a person may see: logs, CLI output, Slack, state.

Secrets are registered once (from the settings, the state URL, or explicitly) and
every path that shows a message calls ``redact``. A secret is recognised in the forms
it takes once it has travelled: raw, JSON-escaped, ``repr()``-quoted, URL-encoded and
base64-encoded (alone or inside a longer base64 text such as a Basic auth header).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "clear_secrets", "redact", "redact_value", "register_secret_text", "variants"]

MASK = "[REDACTED]"

#: Shorter fragments are not searched for in base64 text: they would mask noise.
_MIN_BASE64 = 6


class _Secrets:
    """Registered secret values and the escaped forms they take, as one regex."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not value.strip():
            return
        with self._lock:
            before = len(self._values)
            self._values.update(variants(value))
            if len(self._values) != before:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


def variants(value: str) -> set[str]:
    """The forms a secret takes once quoted by JSON, repr(), a URL or base64."""
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        quote(value, safe=""),
        quote_plus(value),
    }
    forms |= _base64_forms(value.encode("utf-8"))
    return forms - {""}


def _base64_forms(raw: bytes) -> set[str]:
    """The secret's base64 text at each of the three byte alignments it can start at.

    Inside ``base64(prefix + secret + suffix)`` the secret's own characters are those of
    ``base64(pad + secret)`` for ``len(pad) == len(prefix) % 3``, minus the characters
    that mix in the padding or the suffix; those stable cores are what we search for.
    """
    forms = {base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii")}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = (offset * 8 + 5) // 6  # characters that hold any padding bit
        end = ((offset + len(raw)) * 8) // 6  # characters wholly made of the secret's bits
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))
    return forms


_SECRETS = _Secrets()


def register_secret_text(value: str) -> None:
    """Never let ``value`` (nor any of its encoded forms) reach a person."""
    if value:
        _SECRETS.add(value)


def clear_secrets() -> None:
    """Forget every registered secret (tests)."""
    _SECRETS.clear()


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[REDACTED]``."""
    return _SECRETS.redact(text)


def redact_value(value: object) -> object:
    """``value`` with secrets masked in every string inside it (dicts, lists, tuples, sets)."""
    if isinstance(value, str):
        return _SECRETS.redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(redact_value(v) for v in value)
    return value

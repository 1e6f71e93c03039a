"""Signing webhook requests: HMAC-SHA256 over ``<timestamp>.<body>`` with a shared secret.

The sender puts the Unix time in ``X-AX-Timestamp`` and ``sha256=<hex digest>`` in
``X-AX-Signature``. The receiver recomputes the digest over the exact bytes it got,
compares in constant time, and refuses a timestamp outside its replay window, so a
captured request cannot be replayed later (and a replay inside the window is
harmless: responses are stored once per response id). Several comma-separated
signatures are accepted, so a sender can sign with an old and a new secret while
the secret is rotated.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "sign",
    "signature",
    "verify",
]

TIMESTAMP_HEADER = "X-AX-Timestamp"
SIGNATURE_HEADER = "X-AX-Signature"
_SCHEME = "sha256="


class SignatureError(Exception):
    """The request is not signed, signed wrongly, or too old: answer 401."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def sign(secret: str, body: bytes, now: float) -> dict[str, str]:
    """The two headers a sender adds to a request with ``body`` sent at ``now``."""
    timestamp = str(int(now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float
) -> None:
    """Raise ``SignatureError`` unless ``headers`` sign ``body`` with ``secret`` recently.

    ``headers`` keys are compared case-insensitively.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    given = lowered.get(SIGNATURE_HEADER.lower(), "").strip()
    if not timestamp or not given:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix time in whole seconds")
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is more than {tolerance:g} s from the receiver's clock "
            "(a replay, or clocks out of sync)"
        )
    expected = signature(secret, timestamp, body)
    candidates = [part.strip() for part in given.split(",")]
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError(
            f"{SIGNATURE_HEADER} does not match the body (wrong secret, or the body changed)"
        )

"""Naming a failed connection: which host and port, and what happened.

requests and urllib3 wrap the socket's own error two or three times
(``ConnectionError(MaxRetryError(NewConnectionError(ConnectionRefusedError)))``), and
the outermost name says nothing a reader can act on. ``network_error`` digs out what
happened (the name did not resolve, the connection was refused, nothing answered in
time) and where (host and port), for a message such as
``salesforce: cannot reach login.salesforce.com:443: name not resolved (login)``.

A host whose name does not resolve, or that refuses the connection, is a wrong
address or a service that is down: retrying within the same call does not help, so
the call fails at once (``UnreachableError``) and the next cycle tries again. A
connection that timed out or dropped is worth another try within the retry budget.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from connectors.common.errors import FatalError, RetriableError, VendorError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "NAME_NOT_RESOLVED",
    "REFUSED",
    "UnreachableError",
    "endpoint",
    "network_error",
]

#: Seconds to wait for a connection to open (the read timeout is the vendor's own).
CONNECT_TIMEOUT_S = 5.0
NAME_NOT_RESOLVED = "name not resolved"
REFUSED = "connection refused"
TIMED_OUT = "no answer in time"
DROPPED = "connection dropped"


class UnreachableError(FatalError):
    """The vendor's host could not be reached at all; retrying now would not help."""

    def __init__(self, vendor: str, host: str, port: int | None, reason: str, what: str) -> None:
        where = f"{host}:{port}" if port else host
        super().__init__(vendor, f"cannot reach {where}: {reason} ({what})")
        self.host = host
        self.port = port
        self.reason = reason


def endpoint(url: str | None) -> tuple[str, int | None]:
    """(host, port) of a URL, the scheme's default port when none is given."""
    if not url:
        return "the vendor's host", None
    parts = urlsplit(url if "//" in url else f"//{url}")
    default = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return parts.hostname or url, port


def network_error(
    vendor: str, exc: BaseException, what: str, url: str | None = None
) -> VendorError | None:
    """The classified error for a failed connection, or None when ``exc`` is not one.

    ``url`` is where the call was going, when the exception does not say.
    """
    reason = _reason(exc)
    if reason is None:
        return None
    host, port = _where(exc) or endpoint(_url_of(exc) or url)
    if reason in {NAME_NOT_RESOLVED, REFUSED}:
        return UnreachableError(vendor, host, port, reason, what)
    where = f"{host}:{port}" if port else host
    return RetriableError(vendor, f"{what}: {where}: {reason}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, urllib3 reasons, args)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend(n for n in nested if isinstance(n, BaseException))


def _reason(exc: BaseException) -> str | None:
    """What happened to the connection, the most telling cause first; None if not one."""
    errors = list(_chain(exc))
    names = {type(e).__name__ for e in errors}
    text = " ".join(str(e) for e in errors).lower()
    checks = (
        (
            NAME_NOT_RESOLVED,
            any(isinstance(e, socket.gaierror) for e in errors)
            or "NameResolutionError" in names
            or "name or service not known" in text
            or "failed to resolve" in text,
        ),
        (
            REFUSED,
            any(isinstance(e, ConnectionRefusedError) for e in errors)
            or "connection refused" in text,
        ),
        (
            TIMED_OUT,
            any(isinstance(e, TimeoutError) for e in errors) or any("Timeout" in n for n in names),
        ),
        (
            DROPPED,
            any(isinstance(e, ConnectionError | OSError) for e in errors)
            or bool(names & {"ProtocolError", "NewConnectionError", "MaxRetryError"})
            or "ConnectionError" in names,
        ),
    )
    return next((reason for reason, holds in checks if holds), None)


def _where(exc: BaseException) -> tuple[str, int | None] | None:
    """Host and port as urllib3 recorded them on the connection or its pool."""
    for error in _chain(exc):
        attributes = vars(error)  # not getattr: urllib3 deprecates some aliases loudly
        for holder in (attributes.get("conn"), attributes.get("pool")):
            host = getattr(holder, "host", None)
            if isinstance(host, str) and host:
                port = getattr(holder, "port", None)
                return host, port if isinstance(port, int) else None
    return None


def _url_of(exc: BaseException) -> str | None:
    """The URL a requests exception was raised for, when it carries its request."""
    for error in _chain(exc):
        request = getattr(error, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and url:
            return url
    return None

"""Salesforce failures classified once, from the HTTP status and Salesforce's error code.

Salesforce answers errors with a JSON list such as
``[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]``
(OAuth endpoints use ``{"error": ..., "error_description": ...}``). Everything the
retry policy needs is decided here: 5xx, lock contention and request limits are worth
another try; other 4xx are not.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any

import requests

from connectors.common.errors import FatalError, RateLimitedError, RetriableError, VendorError
from connectors.common.network import network_error

__all__ = [
    "VENDOR",
    "SalesforceFatalError",
    "classify_response",
    "classify_status",
    "error_of",
    "from_transport",
    "is_invalid_session",
]

VENDOR = "salesforce"

#: Error codes worth another try even though the status is 4xx.
_RETRIABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"})
_LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED"})
_MESSAGE_LIMIT = 300


class SalesforceFatalError(FatalError):
    """A failure retrying will not fix; ``code`` is Salesforce's error code."""

    def __init__(self, message: str, *, status: int | None, code: str | None) -> None:
        super().__init__(VENDOR, message, status=status)
        self.code = code


def error_of(body: Any) -> tuple[str | None, str]:
    """Salesforce's (error code, message) from a decoded error body of any known shape."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        code = first.get("errorCode") or first.get("statusCode")
        return (str(code) if code else None), str(first.get("message", ""))[:_MESSAGE_LIMIT]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"]), str(body.get("error_description", ""))[:_MESSAGE_LIMIT]
    return None, ""


def _decoded(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def is_invalid_session(response: requests.Response) -> bool:
    """A 401 saying the session expired: the one case worth logging in again."""
    if response.status_code != 401:
        return False
    code, _ = error_of(_decoded(response))
    return code in {"INVALID_SESSION_ID", None}


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify_response(response: requests.Response, what: str) -> VendorError | None:
    """None for success, else the classified error (to raise) for ``what`` was asked."""
    if response.status_code < 300:
        return None
    return classify_status(
        response.status_code, _decoded(response), what, retry_after=_retry_after(response)
    )


def classify_status(
    status: int, body: Any, what: str, *, retry_after: float | None = None
) -> VendorError | None:
    """None for success, else the classified error for an HTTP status and its error body
    (a whole response's, or one Composite subrequest's)."""
    if status < 300:
        return None
    code, message = error_of(body)
    text = f"{what} failed: HTTP {status} {code or ''} {message}".rstrip()
    if status == 429 or code in _LIMIT_CODES:
        return RateLimitedError(VENDOR, text, status=status, retry_after=retry_after)
    if status >= 500 or code in _RETRIABLE_CODES:
        return RetriableError(VENDOR, text, status=status, retry_after=retry_after)
    return SalesforceFatalError(text, status=status, code=code)


def from_transport(
    exc: requests.RequestException, what: str, url: str | None = None
) -> VendorError:
    """A host that cannot be reached fails at once, naming host, port and what happened;
    timeouts and dropped connections are retriable; anything else about the request is not.
    """
    network = network_error(VENDOR, exc, what, url)
    if network is not None:
        return network
    name = type(exc).__name__
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return RetriableError(VENDOR, f"{what} failed: {name}")
    return SalesforceFatalError(f"{what} failed: {name}", status=None, code=None)

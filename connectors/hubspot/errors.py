"""HubSpot failures turned into the shared error classes, once, at the boundary.

Every sub-package of hubspot-api-client raises its own ``ApiException`` class, and
urllib3 raises its own errors for timeouts and dropped connections (the client's
urllib3 retry is off, so they arrive unwrapped). ``classify`` sorts them by what the
caller should do: 429 is rate-limited (with the wait HubSpot asked for), 5xx and
network faults are retriable, any other 4xx is fatal. Messages carry HubSpot's own
explanation and correlation id, never a header or the token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3.exceptions
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.owners.exceptions import ApiException as OwnersApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from connectors.common.errors import FatalError, RateLimitedError, RetriableError, VendorError
from connectors.common.network import network_error

__all__ = [
    "API_EXCEPTIONS",
    "VENDOR",
    "HubSpotRequestError",
    "classify",
    "error_payload",
    "rate_limit_pause",
]

VENDOR = "hubspot"

#: The exception classes of the client packages this connector calls.
API_EXCEPTIONS: tuple[type[Exception], ...] = (
    ObjectsApiException,
    AssociationsApiException,
    PropertiesApiException,
    OwnersApiException,
)


class HubSpotRequestError(FatalError):
    """A 4xx HubSpot refused for good; ``category`` is HubSpot's error category."""

    def __init__(self, message: str, *, status: int, category: str | None) -> None:
        super().__init__(VENDOR, message, status=status)
        self.category = category


_NETWORK_ERRORS = (
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.MaxRetryError,
    ConnectionError,
)
_RETRIABLE_STATUS = frozenset({408, 423})


def classify(exc: BaseException, what: str = "call", url: str | None = None) -> VendorError | None:
    """The shared error class for ``exc``, or None when it is not a vendor failure.

    ``what`` names the call and ``url`` where it went, for a connection that failed."""
    if isinstance(exc, VendorError):
        return exc
    if isinstance(exc, API_EXCEPTIONS):
        status = int(getattr(exc, "status", 0) or 0)
        headers = getattr(exc, "headers", None) or {}
        return _from_status(status, headers, error_payload(getattr(exc, "body", None)))
    if isinstance(exc, _NETWORK_ERRORS):
        return network_error(VENDOR, exc, what, url) or RetriableError(
            VENDOR, f"{what}: network error: {type(exc).__name__}"
        )
    return None


def error_payload(body: object) -> dict[str, Any]:
    """HubSpot's JSON error body as a dict (empty when there is none or it is not JSON)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def rate_limit_pause(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait that HubSpot's headers ask for, if any.

    ``Retry-After`` wins; otherwise an exhausted ``X-HubSpot-RateLimit-Remaining``
    means waiting out its interval, an exhausted secondly limit one second.
    """
    retry_after = _header(headers, "Retry-After")
    if retry_after is not None:
        return _parse_retry_after(retry_after)
    if _header(headers, "X-HubSpot-RateLimit-Remaining") == "0":
        interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        if interval is not None and interval.isdigit():
            return int(interval) / 1000.0
    if _header(headers, "X-HubSpot-RateLimit-Secondly-Remaining") == "0":
        return 1.0
    return None


def _from_status(status: int, headers: Mapping[str, str], payload: dict[str, Any]) -> VendorError:
    message = _describe(status, payload)
    if status == 429:
        if str(payload.get("policyName", "")).upper() == "DAILY":
            return FatalError(
                VENDOR, f"{message}; the portal's daily API limit is used up", status=429
            )
        return RateLimitedError(VENDOR, message, status=429, retry_after=rate_limit_pause(headers))
    if status == 0 or status >= 500 or status in _RETRIABLE_STATUS:
        return RetriableError(VENDOR, message, status=status, retry_after=rate_limit_pause(headers))
    if status == 401:
        return FatalError(
            VENDOR,
            f"{message}; check the private app access token (hubspot.access_token)",
            status=401,
        )
    category = payload.get("category")
    return HubSpotRequestError(message, status=status, category=str(category) if category else None)


def _describe(status: int, payload: dict[str, Any]) -> str:
    category = payload.get("category") or payload.get("errorType")
    text = f"HTTP {status}" + (f" {category}" if category else "")
    if payload.get("message"):
        text += f": {payload['message']}"
    if payload.get("correlationId"):
        text += f" (correlation id {payload['correlationId']})"
    return text


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) else None


def _parse_retry_after(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())

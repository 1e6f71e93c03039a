"""Every HubSpot call goes through here: rate limit, count, classify, retry.

``Transport.call`` waits for the client-side limiter (and the search API's own,
lower one for searches), counts the call by kind, turns SDK and urllib3 exceptions
into the shared error classes and retries under the one ``RetryPolicy``. A 429's
wait (Retry-After or the X-HubSpot-RateLimit headers) also pauses the limiter, and an
exhausted ``X-HubSpot-RateLimit-Remaining`` on a success pauses it before the next call.

The client builds and sends each request (path, query encoding, the bearer token,
errors by status); the JSON it gets back is read here as HubSpot documents it, not
through the client's generated models: those parse every timestamp with dateutil and
cost more CPU per page than HubSpot's higher rate limits leave between two calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import structlog

from connectors.common.calls import CallCounter
from connectors.common.errors import FatalError, RateLimitedError, RetriableError, VendorError
from connectors.common.network import CONNECT_TIMEOUT_S
from connectors.common.ratelimit import RateLimiter
from connectors.common.retry import RetryPolicy, call_with_retry
from connectors.hubspot.errors import VENDOR, classify, rate_limit_pause

__all__ = ["Payload", "Transport"]

#: A JSON object as HubSpot sent it.
Payload = dict[str, Any]

_log = structlog.get_logger(__name__)


class Transport:
    """The single path from the connector to HubSpot."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        search_limiter: RateLimiter,
        counter: CallCounter,
        policy: RetryPolicy,
        timeout: float,
        base_url: str | None = None,
    ) -> None:
        self.limiter = limiter
        self.search_limiter = search_limiter
        self.counter = counter
        self.policy = policy
        self.timeout = timeout
        self.base_url = base_url

    def call(
        self, kind: str, fn: Callable[..., Any], *args: Any, search: bool = False, **kwargs: Any
    ) -> Payload:
        """``fn(*args, **kwargs)`` (a client method) under limits and retries; the JSON answer."""

        def attempt() -> Payload:
            self._acquire(search=search)
            started = time.perf_counter()
            try:
                timeout = (min(CONNECT_TIMEOUT_S, self.timeout), self.timeout)
                response = fn(*args, _request_timeout=timeout, _preload_content=False, **kwargs)
                payload = _json(response)
            except Exception as exc:
                error = classify(exc, kind, self.base_url)
                if error is None:
                    raise
                self._failed(kind, error, search=search, seconds=time.perf_counter() - started)
                raise error from exc
            self.counter.count(kind, status=response.status, seconds=time.perf_counter() - started)
            self._honour_headers(response.headers)
            return payload

        return call_with_retry(self.policy, attempt)

    def _acquire(self, *, search: bool) -> None:
        if search:
            self.search_limiter.acquire()
        self.limiter.acquire()

    def _failed(self, kind: str, error: VendorError, *, search: bool, seconds: float) -> None:
        limited = isinstance(error, RateLimitedError)
        outcome = "rate_limited" if limited else "error"
        self.counter.count(kind, outcome, status=error.status, seconds=seconds)
        _log.info("hubspot_call_failed", kind=kind, status=error.status, error=str(error))
        wait = getattr(error, "retry_after", None)
        if limited and wait:
            self.limiter.pause(wait)
            if search:
                self.search_limiter.pause(wait)

    def _honour_headers(self, headers: Any) -> None:
        wait = rate_limit_pause(headers) if headers else None
        if wait:
            self.limiter.pause(wait)


def _json(response: Any) -> Payload:
    """The body of a raw urllib3 response, read fully so its connection returns to the pool."""
    try:
        data = response.data
    finally:
        response.release_conn()
    if not data:
        return {}
    try:
        payload = json.loads(data)
    except ValueError:
        raise RetriableError(VENDOR, "the response body is not JSON (cut short?)") from None
    if not isinstance(payload, dict):
        raise FatalError(VENDOR, f"expected a JSON object, got {type(payload).__name__}")
    return payload

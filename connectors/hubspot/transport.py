"""Every HubSpot call goes through here: rate limit, count, classify, retry.

``Transport.call`` waits for the client-side limiter (and the search API's own,
lower one for searches), counts the call by kind, turns SDK and urllib3 exceptions
into the shared error classes and retries under the one ``RetryPolicy``. A 429's
wait (Retry-After or the X-HubSpot-RateLimit headers) also pauses the limiter, and an
exhausted ``X-HubSpot-RateLimit-Remaining`` on a success pauses it before the next call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from connectors.common.calls import CallCounter
from connectors.common.errors import RateLimitedError, VendorError
from connectors.common.ratelimit import RateLimiter
from connectors.common.retry import RetryPolicy, call_with_retry
from connectors.hubspot.errors import classify, rate_limit_pause

__all__ = ["Transport"]

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
    ) -> None:
        self.limiter = limiter
        self.search_limiter = search_limiter
        self.counter = counter
        self.policy = policy
        self.timeout = timeout

    def call(
        self, kind: str, fn: Callable[..., Any], *args: Any, search: bool = False, **kwargs: Any
    ) -> Any:
        """``fn(*args, **kwargs)`` with limits, counting and retries; returns the SDK's data.

        ``fn`` is a client method's ``*_with_http_info`` form: it returns the response
        headers too, which carry HubSpot's rate-limit state.
        """

        def attempt() -> Any:
            self._acquire(search=search)
            try:
                data, _status, headers = fn(
                    *args,
                    _request_timeout=self.timeout,
                    **kwargs,
                )
            except Exception as exc:
                error = classify(exc)
                if error is None:
                    raise
                self._failed(kind, error, search=search)
                raise error from exc
            self.counter.count(kind)
            self._honour_headers(headers)
            return data

        return call_with_retry(self.policy, attempt)

    def _acquire(self, *, search: bool) -> None:
        if search:
            self.search_limiter.acquire()
        self.limiter.acquire()

    def _failed(self, kind: str, error: VendorError, *, search: bool) -> None:
        limited = isinstance(error, RateLimitedError)
        self.counter.count(kind, outcome="rate_limited" if limited else "error")
        _log.info("hubspot_call_failed", kind=kind, status=error.status, error=str(error))
        wait = getattr(error, "retry_after", None)
        if limited and wait:
            self.limiter.pause(wait)
            if search:
                self.search_limiter.pause(wait)

    def _honour_headers(self, headers: Any) -> None:
        if not headers:
            return
        wait = rate_limit_pause(headers)
        if wait:
            self.limiter.pause(wait)

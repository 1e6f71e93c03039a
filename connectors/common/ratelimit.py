"""A client-side sliding-window rate limiter, shared by threads of one process.

It keeps at most ``limit`` calls in any ``window`` seconds, and lets a vendor's
429 push the next allowed call out (``pause``). Time and sleep are injectable so
tests and benchmarks can run on a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from prometheus_client import Counter

__all__ = ["RATE_LIMIT_WAITS", "RATE_LIMIT_WAIT_SECONDS", "RateLimiter", "count_wait"]

RATE_LIMIT_WAITS = Counter(
    "ax_rate_limit_waits_total",
    "Waits for a rate limit: the client's own limiter, or the vendor's 429 (retry_after)",
    ["vendor", "cause"],
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "ax_rate_limit_wait_seconds_total",
    "Seconds spent waiting for rate limits",
    ["vendor", "cause"],
)


def count_wait(vendor: str, cause: str, seconds: float) -> None:
    """Record one wait of ``seconds`` for ``vendor``'s rate limit."""
    RATE_LIMIT_WAITS.labels(vendor=vendor, cause=cause).inc()
    RATE_LIMIT_WAIT_SECONDS.labels(vendor=vendor, cause=cause).inc(max(0.0, seconds))


class RateLimiter:
    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        vendor: str = "unknown",
    ) -> None:
        if limit <= 0 or window <= 0:
            raise ValueError("limit and window must be positive")
        self.limit = limit
        self.window = window
        self.vendor = vendor
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._not_before = 0.0
        self._lock = threading.Lock()
        #: Seconds spent waiting, for the metrics endpoint and benchmarks.
        self.waited = 0.0

    def acquire(self) -> float:
        """Block until a call is allowed; return the seconds waited."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._not_before - now)
            while self._calls and self._calls[0] <= now - self.window:
                self._calls.popleft()
            if len(self._calls) >= self.limit:
                wait = max(wait, self._calls[0] + self.window - now)
            if wait > 0:
                self._sleep(wait)
                self.waited += wait
                count_wait(self.vendor, "client_limit", wait)
            stamp = self._clock()
            self._calls.append(max(stamp, now + wait))
            return wait

    def pause(self, seconds: float) -> None:
        """The vendor asked for a pause (Retry-After): no call before it ends."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

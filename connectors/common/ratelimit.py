"""Client-side rate limiters, shared by threads of one process.

``RateLimiter`` keeps at most ``limit`` calls in any ``window`` seconds (a vendor
that counts calls per window: HubSpot, Slack's per-minute tiers). ``TokenBucket``
paces a steady flow: ``burst`` calls at once, then tokens refilled continuously at
``rate`` a second (Slack's one message per second per channel, short bursts
tolerated). Both let a vendor's 429 push the next allowed call out (``pause``).
Time and sleep are injectable so tests and benchmarks can run on a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from prometheus_client import Counter

__all__ = [
    "RATE_LIMIT_WAITS",
    "RATE_LIMIT_WAIT_SECONDS",
    "RateLimiter",
    "TokenBucket",
    "count_wait",
]

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


class _Limiter:
    """What both limiters share: the clock, the vendor's pause, the waits counted."""

    def __init__(
        self, clock: Callable[[], float], sleep: Callable[[float], None], vendor: str
    ) -> None:
        self.vendor = vendor
        self._clock = clock
        self._sleep = sleep
        self._not_before = 0.0
        self._lock = threading.Lock()
        #: Seconds spent waiting, for the metrics endpoint and benchmarks.
        self.waited = 0.0

    def pause(self, seconds: float) -> None:
        """The vendor asked for a pause (Retry-After): no call before it ends."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)


class RateLimiter(_Limiter):
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
        super().__init__(clock, sleep, vendor)
        self.limit = limit
        self.window = window
        self._calls: deque[float] = deque()

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


class TokenBucket(_Limiter):
    """``burst`` calls at once, then one per ``1 / rate`` seconds, tokens refilled continuously.

    Each call reserves the moment it may go out from the previous reservation, not
    from when its caller woke up: a sleep that ends late (a loaded machine, the
    interpreter lock) leaves its lateness in the bucket as refilled tokens instead of
    adding it to every later call's wait, so a backlog goes out at exactly ``rate``.
    Callers on one bucket are served in the order they asked; each sleeps outside the
    lock, on its own reservation.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        vendor: str = "unknown",
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        super().__init__(clock, sleep, vendor)
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at: float | None = None  # the last reservation (the tokens are counted there)

    def acquire(self) -> float:
        """Block until this call's reserved moment; return the seconds waited."""
        with self._lock:
            now = self._clock()
            at = self._reserve(now)
        wait = max(0.0, at - now)
        if wait > 0:
            self._sleep(wait)
            count_wait(self.vendor, "client_limit", wait)
            with self._lock:
                self.waited += wait
        return wait

    def _reserve(self, now: float) -> float:
        last = now if self._at is None else self._at
        at = max(now, last)
        tokens = min(float(self.burst), self._tokens + (at - last) * self.rate)
        if tokens < 1.0:
            at += (1.0 - tokens) / self.rate
            tokens = 1.0
        if at < self._not_before:  # after a vendor's pause: one call, then the pace
            at, tokens = self._not_before, 1.0
        self._tokens, self._at = tokens - 1.0, at
        return at

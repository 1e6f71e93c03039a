"""Slack's Web API rate limits, honoured per method before each call.

Slack publishes a tier per method (requests per minute, per workspace):
Tier 1 about 1, Tier 2 about 20, Tier 3 about 50, Tier 4 about 100.
``chat.postMessage`` has its own rule: about one message per second per channel,
with short bursts tolerated: a token bucket per channel (``post_per_second``, as
many at once as one second holds), paced on its reservations so a long backlog
goes out at exactly that rate. The client waits for its own limiter rather than
learning the limit from 429s (which slack_sdk still honours through Retry-After).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from connectors.common.ratelimit import RateLimiter, TokenBucket

__all__ = ["POST_MESSAGE", "TIER_PER_MINUTE", "SlackLimits"]

POST_MESSAGE = "chat.postMessage"

#: Requests per minute for each method the notifier calls (Slack's documented tiers).
TIER_PER_MINUTE: dict[str, int] = {
    "chat.update": 50,  # Tier 3
    "conversations.history": 50,  # Tier 3
    "conversations.replies": 50,  # Tier 3
    "conversations.open": 50,  # Tier 3
    "users.lookupByEmail": 50,  # Tier 3
    "conversations.list": 20,  # Tier 2
    "files.getUploadURLExternal": 20,  # Tier 2 (files.upload_v2's first step)
    "files.completeUploadExternal": 20,  # Tier 2
}


class SlackLimits:
    """One limiter per method (a window of its tier a minute), and a token bucket per
    channel for ``chat.postMessage``."""

    def __init__(
        self,
        *,
        post_per_second: float = 1.0,
        per_minute: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if post_per_second <= 0:
            raise ValueError("post_per_second must be positive")
        self.post_per_second = post_per_second
        self.per_minute = {**TIER_PER_MINUTE, **(per_minute or {})}
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[tuple[str, str], RateLimiter | TokenBucket] = {}
        self._lock = threading.Lock()

    def acquire(self, method: str, channel: str | None = None) -> float:
        """Wait until ``method`` (to ``channel``, for posts) may be called; seconds waited."""
        limiter = self._limiter(method, channel or "")
        return 0.0 if limiter is None else limiter.acquire()

    @property
    def post_burst(self) -> int:
        """Posts one channel may take at once (as many as one second holds)."""
        return max(1, round(self.post_per_second))

    def post_bucket(
        self, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> TokenBucket:
        """A channel's post limiter, on the given clock (benchmarks replay it on recorded times)."""
        return TokenBucket(self.post_per_second, self.post_burst, clock, sleep, vendor="slack")

    def _limiter(self, method: str, channel: str) -> RateLimiter | TokenBucket | None:
        key = (method, channel if method == POST_MESSAGE else "")
        with self._lock:
            found = self._limiters.get(key)
            if found is not None:
                return found
            if method == POST_MESSAGE:
                found = self.post_bucket(self._clock, self._sleep)
            elif method in self.per_minute:
                limit = self.per_minute[method]
                found = RateLimiter(limit, 60.0, self._clock, self._sleep, vendor="slack")
            else:
                return None
            self._limiters[key] = found
            return found

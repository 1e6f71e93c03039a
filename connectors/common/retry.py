"""The one retry policy: exponential backoff with jitter, honouring Retry-After.

Only ``RetriableError`` is retried; a vendor's Retry-After (when longer than the
backoff) is waited out exactly. Adapters wrap each HTTP call in ``retrying(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from connectors.common.errors import RateLimitedError, RetriableError
from connectors.common.ratelimit import count_wait

__all__ = ["RetryPolicy", "call_with_retry"]

T = TypeVar("T")
_log = structlog.get_logger(__name__)


class RetryPolicy:
    """How often and how long to retry; tests shrink the waits to keep fast."""

    def __init__(
        self,
        attempts: int = 6,
        initial: float = 1.0,
        maximum: float = 60.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.attempts = attempts
        self.initial = initial
        self.maximum = maximum
        self.sleep = sleep
        # Exponential backoff plus up to ``initial`` seconds of jitter. (tenacity's
        # wait_exponential_jitter renamed ``initial`` in 9.2 and warns on it; these two
        # waits mean the same on every supported tenacity version.)
        self._backoff = wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)

    def wait(self, state: RetryCallState) -> float:
        """Backoff with jitter, or the vendor's Retry-After when that is longer."""
        backoff: float = min(self._backoff(state), self.maximum)
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RetriableError) and exc.retry_after is not None:
            return max(backoff, exc.retry_after) if exc.retry_after > 0 else backoff
        return backoff

    def retrying(self, on_retry: Callable[[RetryCallState], None] | None = None) -> Retrying:
        kwargs: dict[str, object] = {}
        if self.sleep is not None:
            kwargs["sleep"] = self.sleep
        return Retrying(
            retry=retry_if_exception_type(RetriableError),
            stop=stop_after_attempt(self.attempts),
            wait=self.wait,
            reraise=True,
            before_sleep=on_retry or _log_retry,
            **kwargs,  # type: ignore[arg-type]  # tenacity types sleep loosely
        )


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, RateLimitedError):
        count_wait(exc.vendor, "retry_after", state.upcoming_sleep)
    _log.warning(
        "vendor_call_retry",
        attempt=state.attempt_number,
        wait_s=round(state.upcoming_sleep, 3),
        error=str(exc),
        status=getattr(exc, "status", None),
    )


def call_with_retry(policy: RetryPolicy, fn: Callable[[], T]) -> T:
    """Run ``fn`` under ``policy``; the last error propagates once attempts run out."""
    for attempt in policy.retrying():
        with attempt:
            return fn()
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

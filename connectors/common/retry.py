"""The one retry policy: exponential backoff with jitter, honouring Retry-After.

Only ``RetriableError`` is retried; a vendor's Retry-After (when longer than the
backoff) is waited out exactly. Adapters wrap each HTTP call in ``retrying(...)``.

Retries are bounded twice: by a budget per call (30 s by default: no retry starts
once the call has been trying, waits included, for longer than that) and by a budget
per job (5 minutes: the retries of every call since ``start_job``). The attempt count
still caps a call. When retries stop, the error says how long the call tried and
which budget ended it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from connectors.common.errors import RateLimitedError, RetriableError, VendorError
from connectors.common.ratelimit import count_wait

__all__ = ["CALL_BUDGET_S", "JOB_BUDGET_S", "RetryPolicy", "call_with_retry"]

#: Default retry budgets: seconds one call may keep retrying, and one job.
CALL_BUDGET_S = 30.0
JOB_BUDGET_S = 300.0

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
        *,
        call_budget_s: float = CALL_BUDGET_S,
        job_budget_s: float = JOB_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.initial = initial
        self.maximum = maximum
        self.sleep = sleep
        self.call_budget_s = call_budget_s
        self.job_budget_s = job_budget_s
        self._clock = clock
        self._job_started = clock()
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

    def start_job(self) -> None:
        """A new job begins: its retry budget is whole again."""
        self._job_started = self._clock()

    def spent(self, call_started: float, upcoming_wait: float) -> str | None:
        """Which budget a retry after ``upcoming_wait`` seconds would break, or None."""
        now = self._clock()
        if now + upcoming_wait - call_started > self.call_budget_s:
            return f"retry budget per call, {self.call_budget_s:g} s"
        if now + upcoming_wait - self._job_started > self.job_budget_s:
            return f"retry budget per job, {self.job_budget_s:g} s"
        return None

    def retrying(
        self,
        on_retry: Callable[[RetryCallState], None] | None = None,
        *,
        stopped: list[str] | None = None,
    ) -> Retrying:
        """A tenacity loop under this policy; ``stopped`` receives the budget that ended it."""
        kwargs: dict[str, object] = {}
        if self.sleep is not None:
            kwargs["sleep"] = self.sleep
        return Retrying(
            retry=retry_if_exception_type(RetriableError),
            stop=stop_any(
                stop_after_attempt(self.attempts), _OverBudget(self, self._clock(), stopped)
            ),
            wait=self.wait,
            reraise=True,
            before_sleep=on_retry or _log_retry,
            **kwargs,  # type: ignore[arg-type]  # tenacity types sleep loosely
        )


class _OverBudget(stop_base):
    """Stop before a retry that would break the call's or the job's budget."""

    def __init__(self, policy: RetryPolicy, started: float, stopped: list[str] | None) -> None:
        self._policy = policy
        self._started = started
        self._stopped = stopped

    def __call__(self, retry_state: RetryCallState) -> bool:
        spent = self._policy.spent(self._started, retry_state.upcoming_sleep)
        if spent is not None and self._stopped is not None:
            self._stopped.append(spent)
        return spent is not None


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
    """Run ``fn`` under ``policy``; the last error propagates once attempts or budgets run
    out, saying how long the call tried."""
    started = policy._clock()
    stopped: list[str] = []
    attempts = 0
    try:
        for attempt in policy.retrying(stopped=stopped):
            with attempt:
                attempts += 1
                return fn()
    except RetriableError as exc:
        if attempts > 1 or stopped:
            _say_how_long(exc, policy._clock() - started, attempts, stopped)
        raise
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


def _say_how_long(exc: VendorError, seconds: float, attempts: int, stopped: list[str]) -> None:
    """Add to the error's message how long the call tried, and what ended it."""
    why = stopped[-1] if stopped else f"{attempts} attempts"
    tries = "attempt" if attempts == 1 else "attempts"
    exc.args = (f"{exc.args[0]}; gave up after {seconds:.1f} s, {attempts} {tries} ({why})",)

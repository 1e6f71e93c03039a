"""One retry layer with two budgets: per call and per job; the error says how long it tried."""

from __future__ import annotations

import pytest

from agent.config.settings import Settings
from connectors.common.errors import FatalError, RetriableError
from connectors.common.retry import RetryPolicy, call_with_retry


class Clock:
    """A monotonic clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _policy(clock: Clock, **kwargs: float) -> RetryPolicy:
    # Fixed 10 s waits (no jitter to speak of): easy to count against a budget.
    return RetryPolicy(
        attempts=100, initial=10.0, maximum=10.0, sleep=clock.sleep, clock=clock, **kwargs
    )


def _failing(clock: Clock, seconds_per_try: float = 0.0) -> object:
    def call() -> None:
        clock.now += seconds_per_try
        raise RetriableError("acme", "query failed: HTTP 503")

    return call


def test_retries_stop_when_the_call_budget_is_spent_and_say_how_long() -> None:
    clock = Clock()
    policy = _policy(clock, call_budget_s=30.0)
    with pytest.raises(RetriableError) as err:
        call_with_retry(policy, _failing(clock))  # type: ignore[arg-type]
    assert clock.sleeps == [10.0, 10.0, 10.0]  # a fourth wait would pass 30 s
    assert str(err.value) == (
        "acme: query failed: HTTP 503; gave up after 30.0 s, 4 attempts"
        " (retry budget per call, 30 s)"
    )


def test_a_slow_failing_call_counts_its_own_time_against_the_budget() -> None:
    clock = Clock()
    policy = _policy(clock, call_budget_s=30.0)
    with pytest.raises(RetriableError, match=r"gave up after 25\.0 s, 1 attempt \(retry budget"):
        call_with_retry(policy, _failing(clock, seconds_per_try=25.0))  # type: ignore[arg-type]
    assert clock.sleeps == []


def test_the_job_budget_bounds_every_call_of_the_job_and_a_new_job_starts_afresh() -> None:
    clock = Clock()
    policy = _policy(clock, call_budget_s=30.0, job_budget_s=50.0)
    with pytest.raises(RetriableError, match="per call"):
        call_with_retry(policy, _failing(clock))  # type: ignore[arg-type]
    spent = clock.now
    with pytest.raises(RetriableError, match=r"retry budget per job, 50 s"):
        call_with_retry(policy, _failing(clock))  # type: ignore[arg-type]
    assert clock.now == 50.0  # the second call stopped at the job's budget
    assert clock.now - spent == 20.0
    policy.start_job()
    before = len(clock.sleeps)
    with pytest.raises(RetriableError, match="per call"):
        call_with_retry(policy, _failing(clock))  # type: ignore[arg-type]
    assert len(clock.sleeps) - before == 3


def test_a_fatal_error_is_not_retried_and_keeps_its_message() -> None:
    clock = Clock()

    def call() -> None:
        raise FatalError("acme", "bad credentials")

    with pytest.raises(FatalError) as err:
        call_with_retry(_policy(clock), call)
    assert str(err.value) == "acme: bad credentials"
    assert clock.sleeps == []


def test_the_budgets_are_settings_of_each_connector() -> None:
    settings = Settings.model_validate(
        {
            "salesforce": {"retry_call_budget_s": 12, "retry_job_budget_s": 60},
            "hubspot": {"retry_call_budget_s": 8},
        }
    )
    assert (settings.salesforce.retry_call_budget_s, settings.salesforce.retry_job_budget_s) == (
        12,
        60,
    )
    assert (settings.hubspot.retry_call_budget_s, settings.hubspot.retry_job_budget_s) == (8, 300)

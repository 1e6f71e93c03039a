"""The shared call counter logs every vendor call; rate-limit waits are counted."""

from __future__ import annotations

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from connectors.common.calls import CallCounter
from connectors.common.errors import RateLimitedError
from connectors.common.ratelimit import RateLimiter, TokenBucket
from connectors.common.retry import RetryPolicy, call_with_retry


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_call_is_counted_and_logged_at_debug_with_status_and_latency() -> None:
    counter = CallCounter("acme")
    before = _sample("ax_api_calls_total", vendor="acme", kind="query", outcome="ok")
    with capture_logs() as logs:
        counter.count("query", status=200, seconds=0.0421)
    assert counter.by_kind["query"] == 1
    assert _sample("ax_api_calls_total", vendor="acme", kind="query", outcome="ok") == before + 1
    assert logs == [
        {
            "event": "vendor_call",
            "log_level": "debug",
            "vendor": "acme",
            "kind": "query",
            "outcome": "ok",
            "status": 200,
            "latency_ms": 42.1,
        }
    ]
    assert _sample("ax_api_call_duration_seconds_count", vendor="acme", kind="query") >= 1


def test_the_client_side_limiter_counts_its_waits() -> None:
    now = [0.0]
    limiter = RateLimiter(
        1, 10.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s), vendor="lim"
    )
    limiter.acquire()
    limiter.acquire()  # waits out the window
    labels = {"vendor": "lim", "cause": "client_limit"}
    assert _sample("ax_rate_limit_waits_total", **labels) == 1
    assert _sample("ax_rate_limit_wait_seconds_total", **labels) == 10.0


def test_a_vendor_429_retry_counts_as_a_rate_limit_wait() -> None:
    attempts = iter([RateLimitedError("v429", "slow down", status=429, retry_after=2.0), None])

    def call() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "done"

    policy = RetryPolicy(attempts=3, initial=0.01, maximum=5, sleep=lambda _s: None)
    assert call_with_retry(policy, call) == "done"
    labels = {"vendor": "v429", "cause": "retry_after"}
    assert _sample("ax_rate_limit_waits_total", **labels) == 1
    assert _sample("ax_rate_limit_wait_seconds_total", **labels) >= 2.0


def test_a_token_bucket_honours_the_vendors_pause_then_paces_again() -> None:
    now = [0.0]
    bucket = TokenBucket(
        2.0, 2, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s), vendor="tb"
    )
    assert [bucket.acquire(), bucket.acquire(), bucket.acquire()] == [0.0, 0.0, 0.5]
    bucket.pause(10.0)  # Retry-After: 10 s from now
    assert bucket.acquire() == 10.0  # one call when the pause ends, not a burst
    assert bucket.acquire() == 0.5
    labels = {"vendor": "tb", "cause": "client_limit"}
    assert _sample("ax_rate_limit_waits_total", **labels) == 3
    assert bucket.waited == 11.0

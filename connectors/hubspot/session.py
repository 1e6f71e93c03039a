"""One connection to a HubSpot portal: the API objects and the transport they share.

The CRM connector and the survey source of one portal share a session, so they share
its rate limiters: HubSpot counts the requests of a private app per portal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.core.errors import ConfigError
from connectors.common.calls import CallCounter
from connectors.common.ratelimit import RateLimiter
from connectors.common.retry import RetryPolicy
from connectors.hubspot.client import HubSpotApis, build_apis
from connectors.hubspot.errors import VENDOR
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.transport import Transport

__all__ = ["HubSpotSession", "connect"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HubSpotSession:
    apis: HubSpotApis
    transport: Transport
    #: The time a read starts at (cursors are capped there); injectable for tests.
    clock: Callable[[], datetime]


def connect(
    settings: HubSpotSettings,
    *,
    clock: Callable[[], datetime] = _utcnow,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    retry: RetryPolicy | None = None,
) -> HubSpotSession:
    """A session for ``settings``; ``ConfigError`` when no access token is configured.

    ``monotonic``/``sleep`` drive the rate limiters and ``retry`` the backoff, so
    tests and benchmarks can run on a fake clock.
    """
    if settings.access_token is None or not settings.access_token.get_secret_value():
        raise ConfigError(
            "hubspot.access_token is not set: put the private app token in "
            "AX_HUBSPOT__ACCESS_TOKEN or the secrets file (AX_SECRETS_FILE)"
        )
    apis = build_apis(settings.base_url, settings.access_token.get_secret_value())
    transport = Transport(
        limiter=RateLimiter(
            settings.burst_limit, settings.burst_window_s, monotonic, sleep, vendor=VENDOR
        ),
        search_limiter=RateLimiter(
            settings.search_limit, settings.search_window_s, monotonic, sleep, vendor=VENDOR
        ),
        counter=CallCounter(VENDOR),
        policy=retry
        or RetryPolicy(
            attempts=settings.retry_attempts,
            sleep=sleep,
            call_budget_s=settings.retry_call_budget_s,
            job_budget_s=settings.retry_job_budget_s,
            clock=monotonic,
        ),
        timeout=settings.timeout_s,
        base_url=settings.base_url,
    )
    return HubSpotSession(apis=apis, transport=transport, clock=clock)

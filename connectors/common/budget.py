"""A per-run share of a vendor's daily API allowance, read from response headers.

Vendors such as Salesforce report the org's usage on every response (for free), and
other integrations share that allowance. ``CallBudget`` turns those reports into two
limits checked before each call: a run may use at most ``run_share`` of what was left
when it began, and no call is made once the org has used ``max_used_share`` of its
allowance. Stopping early is logged and counted, never silent.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import structlog
from prometheus_client import Counter, Gauge

from connectors.common.errors import FatalError

__all__ = ["API_BUDGET_STOPS", "API_USAGE_RATIO", "BudgetExhaustedError", "CallBudget", "Usage"]

_log = structlog.get_logger(__name__)

API_BUDGET_STOPS = Counter(
    "ax_api_budget_stops_total",
    "Runs stopped early to stay within the vendor API budget",
    ["vendor", "reason"],
)
API_USAGE_RATIO = Gauge(
    "ax_api_daily_usage_ratio",
    "Share of the vendor's daily API allowance used, as last reported by the vendor",
    ["vendor"],
)


@dataclass(frozen=True, slots=True)
class Usage:
    """Calls used and allowed in the vendor's current day."""

    used: int
    limit: int

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit > 0 else 1.0


class BudgetExhaustedError(FatalError):
    """The run stopped before a call that would break its API budget."""

    def __init__(self, vendor: str, message: str, *, reason: str) -> None:
        super().__init__(vendor, message)
        self.reason = reason


class CallBudget:
    """Counts this run's calls against the allowance the vendor reports."""

    def __init__(
        self, vendor: str, *, run_share: float = 0.25, max_used_share: float = 0.8
    ) -> None:
        if not (0 < run_share <= 1 and 0 < max_used_share <= 1):
            raise ValueError("budget shares must be in (0, 1]")
        self.vendor = vendor
        self.run_share = run_share
        self.max_used_share = max_used_share
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start a new run: its allowance is set by the next usage report."""
        with self._lock:
            self.calls = 0
            self.allowance: int | None = None
            self.usage: Usage | None = None

    def spend(self) -> None:
        """Record one call made by this run."""
        with self._lock:
            self.calls += 1

    def observe(self, usage: Usage) -> None:
        """Take the vendor's latest report; the first one of a run fixes its allowance."""
        with self._lock:
            if self.allowance is None:
                # The report already includes this run's calls so far: add them back.
                remaining = max(0, usage.limit - usage.used + self.calls)
                self.allowance = math.floor(remaining * self.run_share)
            self.usage = usage
        API_USAGE_RATIO.labels(vendor=self.vendor).set(usage.ratio)

    def check(self) -> None:
        """Raise ``BudgetExhaustedError`` if the next call would break a limit."""
        with self._lock:
            usage, allowance, calls = self.usage, self.allowance, self.calls
        if usage is not None and usage.ratio >= self.max_used_share:
            self._stop(
                "org_share",
                f"the org has used {usage.used} of {usage.limit} daily API calls "
                f"(limit {self.max_used_share * 100:g} %); stopping early",
                usage=usage,
            )
        if allowance is not None and calls >= allowance:
            self._stop(
                "run_share",
                f"this run made {calls} API calls, its budget of {self.run_share * 100:g} % of "
                f"the remaining daily allowance; stopping early",
                usage=usage,
            )

    def _stop(self, reason: str, message: str, *, usage: Usage | None) -> None:
        API_BUDGET_STOPS.labels(vendor=self.vendor, reason=reason).inc()
        _log.warning(
            "api_budget_stop",
            vendor=self.vendor,
            reason=reason,
            calls=self.calls,
            allowance=self.allowance,
            used=usage.used if usage else None,
            limit=usage.limit if usage else None,
        )
        raise BudgetExhaustedError(self.vendor, message, reason=reason)

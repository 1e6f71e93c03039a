"""Counting and logging vendor API calls: for budgets, benchmarks, ``/metrics`` and debugging.

Every adapter reports each HTTP call here once, with its outcome and, when known, the
HTTP status and latency: that one place counts it (by kind, and in Prometheus) and
logs it at debug level, so no adapter writes its own call log.
"""

from __future__ import annotations

import threading
from collections import Counter

import structlog
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram

__all__ = ["API_CALLS", "API_CALL_SECONDS", "CallCounter"]

_log = structlog.get_logger(__name__)

#: Process-wide Prometheus counter; each CallCounter also keeps its own tally.
API_CALLS = PromCounter(
    "ax_api_calls_total",
    "Vendor API calls by vendor, kind and outcome",
    ["vendor", "kind", "outcome"],
)
API_CALL_SECONDS = Histogram(
    "ax_api_call_duration_seconds",
    "Latency of vendor API calls by vendor and kind",
    ["vendor", "kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)


class CallCounter:
    """Counts one connector's calls; ``by_kind`` is what benchmarks compare to bounds.

    A call that packs several requests (a Salesforce Composite request) counts once in
    ``by_kind``, as the vendor counts it against its limits, and its requests are
    counted in ``subrequests``.
    """

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.by_kind: Counter[str] = Counter()
        self.subrequests: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(
        self,
        kind: str,
        outcome: str = "ok",
        *,
        status: int | None = None,
        seconds: float | None = None,
        subrequests: int = 0,
    ) -> None:
        """One call of ``kind`` ended with ``outcome`` (HTTP ``status``, after ``seconds``),
        carrying ``subrequests`` requests when it was a composite call."""
        with self._lock:
            self.by_kind[kind] += 1
            if subrequests:
                self.subrequests[kind] += subrequests
        API_CALLS.labels(vendor=self.vendor, kind=kind, outcome=outcome).inc()
        if seconds is not None:
            API_CALL_SECONDS.labels(vendor=self.vendor, kind=kind).observe(seconds)
        packed = {"subrequests": subrequests} if subrequests else {}
        _log.debug(
            "vendor_call",
            vendor=self.vendor,
            kind=kind,
            outcome=outcome,
            status=status,
            latency_ms=None if seconds is None else round(seconds * 1000, 1),
            **packed,
        )

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def summary(self) -> dict[str, dict[str, int]]:
        """Counted calls and the subrequests they carried, by kind."""
        with self._lock:
            return {
                kind: {"calls": n, "subrequests": self.subrequests.get(kind, 0)}
                for kind, n in sorted(self.by_kind.items())
            }

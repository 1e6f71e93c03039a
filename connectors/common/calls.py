"""Counting vendor API calls by kind: for budgets, benchmarks and ``/metrics``."""

from __future__ import annotations

import threading
from collections import Counter

from prometheus_client import Counter as PromCounter

__all__ = ["API_CALLS", "CallCounter"]

#: Process-wide Prometheus counter; each CallCounter also keeps its own tally.
API_CALLS = PromCounter(
    "ax_api_calls_total",
    "Vendor API calls by vendor, kind and outcome",
    ["vendor", "kind", "outcome"],
)


class CallCounter:
    """Counts one connector's calls; ``by_kind`` is what benchmarks compare to bounds."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.by_kind: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, kind: str, outcome: str = "ok") -> None:
        with self._lock:
            self.by_kind[kind] += 1
        API_CALLS.labels(vendor=self.vendor, kind=kind, outcome=outcome).inc()

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

"""The agent's own Prometheus metrics (vendor calls and rate limits live in ``connectors.common``).

All metrics are process-wide, in prometheus_client's default registry, which is what
``/metrics`` serves.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CYCLES",
    "CYCLE_SECONDS",
    "LAST_SUCCESS",
    "LEADER",
    "LEADERSHIP_CHANGES",
    "LEADER_EPOCH",
    "OUTBOX_PENDING",
    "RECORDS_WRITTEN",
    "RESPONSES_RECEIVED",
    "WEBHOOK_REQUESTS",
    "watch_leadership",
    "watch_outbox",
]

CYCLES = Counter("ax_cycles_total", "Job runs by job and outcome", ["job", "outcome"])
CYCLE_SECONDS = Histogram(
    "ax_cycle_duration_seconds",
    "How long job runs take",
    ["job"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800),
)
LAST_SUCCESS = Gauge(
    "ax_job_last_success_timestamp_seconds", "When each job last succeeded (Unix time)", ["job"]
)
RECORDS_WRITTEN = Counter(
    "ax_records_written_total",
    "CRM records written back, by CRM, object and outcome (written or failed)",
    ["crm", "object", "outcome"],
)
RESPONSES_RECEIVED = Counter(
    "ax_responses_received_total",
    "Survey responses received by channel (webhook, file_drop, sources) and outcome",
    ["channel", "outcome"],
)
WEBHOOK_REQUESTS = Counter(
    "ax_webhook_requests_total", "Webhook requests by HTTP status", ["status"]
)
OUTBOX_PENDING = Gauge("ax_alert_outbox_pending", "Alerts recorded and not yet delivered")


def watch_outbox(count: Callable[[], int]) -> None:
    """Read the outbox size at scrape time (an unreachable database reads as -1)."""

    def read() -> float:
        try:
            return float(count())
        except Exception:  # a scrape must not fail because the state database is down
            return -1.0

    OUTBOX_PENDING.set_function(read)


LEADER = Gauge("ax_leader", "1 while this agent leads, else 0")
LEADER_EPOCH = Gauge(
    "ax_leader_epoch", "The leadership epoch (fencing token) this agent holds; 0 when not leading"
)
LEADERSHIP_CHANGES = Counter(
    "ax_leadership_changes_total", "Times this agent took or gave up the leadership"
)


def watch_leadership(epoch: Callable[[], int | None]) -> None:
    """``ax_leader`` and ``ax_leader_epoch`` read this agent's epoch at scrape time."""
    LEADER.set_function(lambda: 0.0 if epoch() is None else 1.0)
    LEADER_EPOCH.set_function(lambda: float(epoch() or 0))

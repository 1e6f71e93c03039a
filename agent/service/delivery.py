"""The delivery worker: drains the outbox in its own thread whenever alerts are recorded.

Rule evaluation (the alerts job) can take seconds on a large portfolio; were delivery
to run in the scheduler's thread, posting would pause while accounts are evaluated.
So the alerts and escalation jobs only record, then ``wake()`` this worker, which
sends what is pending at the pace the vendor's rate limits allow while the next
evaluation runs.

One sender: ``deliver`` holds the repository's sending lock, so this worker, the
outbox job (the safety net on its own cadence, for retries) and the flush at stop
never send side by side. Every post is still claimed against the leadership epoch
(``AlertRepo.claim_many``, then ``confirm`` right before each send): a worker whose
agent was superseded sends nothing more; it stops at its first refused claim and
sends again once its agent leads anew: the worker notices that within
``idle_seconds`` of its own accord (the outbox a previous leader left is sent at
once), and the agent wakes it as soon as it takes the leadership.
While the agent stops, a drain in progress goes on until the drain deadline; the
worker then exits and the flush at stop reports what remains.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from agent.alerts.deliver import DeliveryReport, deliver
from agent.core.timeutil import utcnow
from agent.service.runtime import Runtime
from agent.service.worker import Worker
from agent.state.errors import FencedError

__all__ = ["DeliveryWorker"]

_log = structlog.get_logger(__name__)


class DeliveryWorker(Worker):
    """Sends the outbox of ``runtime`` each time it is woken (alerts were recorded),
    while ``leading()``; a round in progress at ``stop()`` ends at the drain deadline."""

    def __init__(
        self, runtime: Runtime, leading: Callable[[], bool], *, idle_seconds: float = 5.0
    ) -> None:
        self.runtime = runtime
        self.leading = leading
        self.idle_seconds = idle_seconds
        self.rounds = 0
        self.last: DeliveryReport | None = None
        super().__init__("delivery")

    def _loop(self) -> None:
        led = False
        while not self._stop.is_set():
            woken = self._wake.wait(self.idle_seconds)
            if self._stop.is_set():
                break
            leading = self.leading()
            took_over, led = leading and not led, leading
            if not (woken or took_over):
                continue
            self._wake.clear()  # alerts recorded from now on wake another round
            if not leading:
                continue  # a standby sends nothing; the next leader drains the outbox
            self.round()

    def round(self) -> DeliveryReport | None:
        """One drain of the outbox; never raises."""
        repo = self.runtime.pipeline.repo
        try:
            report = deliver(repo, self.runtime.notifier, utcnow())
        except FencedError as exc:  # another agent leads now: send nothing more
            _log.warning("delivery_fenced", error=str(exc))
            return None
        except Exception:  # the worker must never die; the outbox job retries
            _log.exception("delivery_failed")
            return None
        self.rounds += 1
        self.last = report
        if report.sent or report.failed or report.error or report.updated:
            _log.info(
                "alerts_delivered",
                sent=report.sent,
                recovered=report.recovered,
                updated=report.updated,
                failed=report.failed,
                deferred=report.deferred,
                error=report.error,
            )
        return report

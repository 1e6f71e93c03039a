"""The scheduler: each job on its own cadence, one at a time, in one thread.

Jobs never overlap (they share the CRM and the outbox), so one thread runs them:
whichever is due first, ties broken by dependency order, and a job asked for with
``trigger`` (a detractor from the webhook) before anything else. After a run the
job's next time is set from its cadence, whether the run failed or not: a failure
is retried at the next regular time, and the loop goes on.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Literal

import structlog

from agent.config.service import JOB_NAMES
from agent.core.timeutil import utcnow
from agent.service.cadence import Cadence
from agent.service.runner import JobResult

__all__ = ["Scheduler"]

_log = structlog.get_logger(__name__)

Outcome = Literal["stopped", "lost"]


class Scheduler:
    """Runs the enabled jobs (``cadences``) through ``run`` until stopped or no longer leader."""

    def __init__(
        self,
        cadences: Mapping[str, Cadence],
        run: Callable[[str], JobResult],
        *,
        order: Sequence[str] = JOB_NAMES,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.jobs = [name for name in order if name in cadences]
        self.cadences = dict(cadences)
        self.last: dict[str, JobResult] = {}
        self._run = run
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not cryptography
        self._due: dict[str, datetime] = {}
        self._triggered: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: The job running now and when it started (``time.monotonic``); None between jobs.
        self._running: tuple[str, float] | None = None

    # -- control (any thread) ---------------------------------------------------------

    def trigger(self, job: str) -> None:
        """Run ``job`` as soon as the current one is done (ignored if it is not enabled)."""
        if job not in self.cadences:
            return
        with self._lock:
            if job not in self._triggered:
                self._triggered.append(job)
        self._wake.set()

    def stop(self) -> None:
        """Take no new job; the loop returns once the running one has finished."""
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> tuple[str, float] | None:
        """The job running now and for how many seconds it has run (None: between jobs)."""
        with self._lock:
            current = self._running
        return None if current is None else (current[0], time.monotonic() - current[1])

    # -- running (the scheduler's thread) -----------------------------------------------

    def run_once(self) -> list[JobResult]:
        """Each enabled job once, in dependency order (stops early when asked to stop)."""
        results: list[JobResult] = []
        for job in self.jobs:
            if self._stop.is_set():
                break
            results.append(self.execute(job))
        return results

    def run(self, still_leader: Callable[[], bool], leader_check_seconds: float = 5.0) -> Outcome:
        """Run jobs as they fall due until ``stop()`` ("stopped") or leadership is lost ("lost")."""
        now = self._clock()
        self._due = {job: self.cadences[job].first(now, self._rng) for job in self.jobs}
        checked = time.monotonic()
        while not self._stop.is_set():
            job, wait = self.pick(self._clock())
            if job is None:
                self._wake.wait(min(wait, leader_check_seconds))
                self._wake.clear()
                if time.monotonic() - checked < leader_check_seconds:
                    continue
            if not still_leader():
                _log.warning("leadership_lost_stopping_jobs")
                return "lost"
            checked = time.monotonic()
            if job is not None and not self._stop.is_set():
                self.execute(job)
        return "stopped"

    def pick(self, now: datetime) -> tuple[str | None, float]:
        """The job to run now (a triggered one first), or None and the seconds to wait."""
        with self._lock:
            if self._triggered:
                return self._triggered.pop(0), 0.0
        if not self._due:
            return None, 3600.0
        job = min(self.jobs, key=lambda j: (self._due[j], self.jobs.index(j)))
        wait = (self._due[job] - now).total_seconds()
        return (job, 0.0) if wait <= 0 else (None, wait)

    def execute(self, job: str) -> JobResult:
        """Run ``job`` now and schedule its next run."""
        with self._lock:
            self._running = (job, time.monotonic())
        try:
            result = self._run(job)
        finally:
            with self._lock:
                self._running = None
        self.last[job] = result
        if job in self._due:
            self._due[job] = self.cadences[job].after(self._clock(), self._rng)
        return result

"""When a job runs next: pure functions of the cadence, the time and a random source."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from agent.config.service import JobCadence

__all__ = ["Cadence"]


@dataclass(frozen=True, slots=True)
class Cadence:
    """An interval or a cron expression (UTC), with up to ``jitter`` seconds of delay."""

    every: float | None = None
    cron: str | None = None
    jitter: float = 0.0

    @classmethod
    def of(cls, settings: JobCadence) -> Cadence:
        return cls(every=settings.every, cron=settings.cron, jitter=settings.jitter)

    def first(self, now: datetime, rng: random.Random) -> datetime:
        """The first run after start-up: interval jobs at once (so in dependency order),
        cron jobs at their next time."""
        if self.every is not None:
            return now
        return self._next_cron(now) + self._delay(rng)

    def after(self, finished: datetime, rng: random.Random) -> datetime:
        """The next run once a run finished at ``finished`` (never two runs overlap)."""
        if self.every is not None:
            return finished + timedelta(seconds=self.every) + self._delay(rng)
        return self._next_cron(finished) + self._delay(rng)

    def _next_cron(self, now: datetime) -> datetime:
        if self.cron is None:  # pragma: no cover - settings require one of the two
            raise ValueError("a cadence needs an interval or a cron expression")
        start = now.astimezone(UTC)
        nxt: datetime = croniter(self.cron, start).get_next(datetime)
        return nxt.astimezone(UTC)

    def _delay(self, rng: random.Random) -> timedelta:
        return timedelta(seconds=rng.uniform(0, self.jitter)) if self.jitter > 0 else timedelta(0)

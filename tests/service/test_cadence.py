"""Job cadences: validated settings, interval and cron times, bounded jitter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from agent.config.service import JOB_NAMES, JobCadence, ScheduleSettings
from agent.config.settings import ConfigError, load_settings
from agent.service.cadence import Cadence

T0 = datetime(2026, 3, 2, 10, 7, 30, tzinfo=UTC)


def test_every_job_has_a_default_cadence() -> None:
    schedule = ScheduleSettings()
    for job in JOB_NAMES:
        assert schedule.cadence(job).every is not None
    with pytest.raises(KeyError, match="unknown job 'sync'"):
        schedule.cadence("sync")


@pytest.mark.parametrize(
    ("given", "seconds"), [(90, 90.0), ("90", 90.0), ("15m", 900.0), ("1h30m", 5400.0), (0.5, 0.5)]
)
def test_intervals_are_seconds_or_durations(given: object, seconds: float) -> None:
    assert JobCadence.model_validate({"every": given}).every == seconds


def test_cadence_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            schedule={
                "writeback": {"cron": "61 * * * *"},
                "alerts": {"every": "soon"},
                "crm_sync": {"every": 60, "cron": "* * * * *"},
                "outbox": {"every": -1},
            }
        )
    text = str(caught.value)
    assert "schedule.writeback: Value error, cron '61 * * * *' is not a valid cron" in text
    assert "schedule.alerts.every: Value error, 'soon' is not a duration" in text
    assert "schedule.crm_sync: Value error, give exactly one of 'every'" in text
    assert "schedule.outbox.every: Input should be greater than 0" in text


def test_unknown_schedule_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"schedule\.sync"):
        load_settings(schedule={"sync": {"every": 60}})


def test_environment_sets_a_cadence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AX_SCHEDULE__WRITEBACK__CRON", "0 */2 * * *")
    settings = load_settings()
    assert settings.schedule.writeback.cron == "0 */2 * * *"


def test_interval_jobs_start_at_once_then_follow_the_interval() -> None:
    cadence = Cadence(every=60)
    rng = random.Random(1)
    assert cadence.first(T0, rng) == T0
    assert cadence.after(T0, rng) == T0 + timedelta(seconds=60)


def test_cron_jobs_run_at_their_next_time_in_utc() -> None:
    cadence = Cadence(cron="*/15 * * * *")
    rng = random.Random(1)
    assert cadence.first(T0, rng) == datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    assert cadence.after(datetime(2026, 3, 2, 10, 15, tzinfo=UTC), rng) == datetime(
        2026, 3, 2, 10, 30, tzinfo=UTC
    )


def test_jitter_delays_by_at_most_its_length_and_varies() -> None:
    cadence = Cadence(every=60, jitter=10)
    rng = random.Random(7)
    delays = [(cadence.after(T0, rng) - T0).total_seconds() - 60 for _ in range(200)]
    assert all(0 <= d <= 10 for d in delays)
    assert max(delays) - min(delays) > 5
    cron = Cadence(cron="0 * * * *", jitter=30)
    times = {cron.after(T0, rng) for _ in range(20)}
    assert all(
        datetime(2026, 3, 2, 11, tzinfo=UTC) <= t <= datetime(2026, 3, 2, 11, 0, 30, tzinfo=UTC)
        for t in times
    )
    assert len(times) > 1

"""Settings of the long-running agent: job cadences, the HTTP server, the webhook, the file drop.

Cadences are an interval (``every: 15m`` or a number of seconds) or a cron
expression (``cron: "*/30 * * * *"``, five fields, UTC), each with an optional
``jitter`` (a random delay up to that long, so replicas and neighbours do not call
the vendors in lock-step). Everything is validated at start-up with the rest of
the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from croniter import croniter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from agent.core.durations import DurationError, parse_duration

__all__ = [
    "JOB_NAMES",
    "FileDropSettings",
    "JobCadence",
    "ScheduleSettings",
    "Seconds",
    "ServerSettings",
    "WebhookSettings",
]

#: Every job of the scheduler, in dependency order (``run --once`` runs them so).
JOB_NAMES: tuple[str, ...] = (
    "crm_sync",
    "survey_ingest",
    "tasks",  # read back first: a task completed in the CRM closes its loop before computing
    "coverage_plan",
    "writeback",
    "alerts",
    "escalation",
    "outbox",
)


def _seconds(value: Any) -> Any:
    """``90``, ``1.5`` or a duration such as ``15m`` / ``1h30m``, as seconds."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return parse_duration(text).total_seconds()
        except DurationError as exc:
            raise ValueError(str(exc)) from None
    return value


#: A number of seconds, or a duration written as in rule files (``30s``, ``15m``, ``1h``).
Seconds = Annotated[float, BeforeValidator(_seconds)]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobCadence(_Block):
    """When one job runs: ``every`` (an interval) or ``cron`` (UTC), plus ``jitter``."""

    every: Seconds | None = Field(default=None, gt=0)
    cron: str | None = None
    jitter: Seconds = Field(default=0.0, ge=0)
    enabled: bool = True

    @model_validator(mode="after")
    def _one_way(self) -> JobCadence:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' (an interval) or 'cron' (an expression)")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(
                f"cron {self.cron!r} is not a valid cron expression "
                "(five fields: minute hour day-of-month month day-of-week)"
            )
        return self


def _every(seconds: float, jitter: float) -> JobCadence:
    return JobCadence(every=seconds, jitter=jitter)


class ScheduleSettings(_Block):
    """The cadence of each job, the shutdown grace period and the standby's polling."""

    crm_sync: JobCadence = _every(900, 30)
    survey_ingest: JobCadence = _every(60, 5)
    #: CRM tasks: completions read back, new tasks created, closures pushed.
    tasks: JobCadence = _every(300, 15)
    #: The coverage plan (``plan:``); a run finds a plan younger than this still fresh.
    coverage_plan: JobCadence = _every(6 * 3600, 60)
    writeback: JobCadence = _every(900, 30)
    alerts: JobCadence = _every(60, 5)
    escalation: JobCadence = _every(300, 15)
    #: Delivers what is still pending in the outbox (after a Slack outage, a closed loop).
    outbox: JobCadence = _every(30, 0)
    #: After SIGTERM/SIGINT: how long the current batch may take before the agent exits.
    grace_seconds: Seconds = Field(default=30.0, gt=0)
    #: A standby tries to take the leadership this often (PostgreSQL state only).
    standby_poll_seconds: Seconds = Field(default=5.0, gt=0)
    #: The leader confirms it still holds the leadership at least this often when idle.
    leader_check_seconds: Seconds = Field(default=5.0, gt=0)
    #: The leader's lease: renewed every third of it by a heartbeat; a standby takes
    #: over a leader that stopped renewing it (hung, paused) once it has run out.
    lease_seconds: Seconds = Field(default=15.0, ge=1, le=600)
    #: A job running longer than this is stuck (a call that never returns): the leader
    #: stops renewing its lease, steps down and exits with status 1, so that a standby,
    #: or the supervisor's restart, takes over. What the stuck job still tries to
    #: commit is refused by its ended epoch.
    job_timeout_seconds: Seconds = Field(default=7200.0, ge=1)
    #: Job runs older than this many days are dropped from the cycles log (at each CRM sync).
    keep_cycles_days: int = Field(default=30, ge=1)

    def cadence(self, job: str) -> JobCadence:
        """The cadence of ``job`` (one of ``JOB_NAMES``)."""
        if job not in JOB_NAMES:
            raise KeyError(f"unknown job {job!r}; jobs are {', '.join(JOB_NAMES)}")
        value: JobCadence = getattr(self, job)
        return value


class ServerSettings(_Block):
    """The agent's one HTTP server: health, readiness, metrics, webhook, Slack buttons."""

    enabled: bool = True
    #: ``127.0.0.1`` by default; ``0.0.0.0`` to serve other hosts (containers do).
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    threads: int = Field(default=4, ge=1, le=64)


class WebhookSettings(_Block):
    """``POST /webhooks/responses``: survey responses pushed by a survey tool, signed.

    The sender signs ``<timestamp>.<body>`` with HMAC-SHA256 and the shared ``secret``
    (set it in the environment: ``AX_WEBHOOK__SECRET``); without a secret the
    endpoint refuses every request.
    """

    secret: SecretStr | None = None
    #: A request whose timestamp is further than this from now is refused (replays).
    tolerance_seconds: Seconds = Field(default=300.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    #: Most responses one request may carry.
    max_responses: int = Field(default=500, ge=1)
    #: The ``source`` the responses are stored under (idempotent on source + response_id).
    source: str = Field(default="webhook", min_length=1)


class FileDropSettings(_Block):
    """A folder watched for survey exports (``*.csv``, ``*.jsonl``), each processed once."""

    #: The folder; None switches the file drop off.
    path: Path | None = None
    #: The ``source`` the responses are stored under.
    source: str = Field(default="file_drop", min_length=1)
    #: A file changed more recently than this is still being written and waits.
    settle_seconds: Seconds = Field(default=5.0, ge=0)
    #: A file that fails this many times is moved to ``failed/`` with the reason, so that
    #: it cannot hold up the files after it cycle after cycle.
    max_tries: int = Field(default=3, ge=1)

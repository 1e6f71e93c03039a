"""What the jobs share in one agent process: the store, the connectors, the alert pipeline.

Built once at start-up from the settings (``Runtime.build``), so a configuration
problem stops the agent before it takes the leadership; vendor clients are kept
between runs (sessions, connection pools) and their per-run budgets reset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.alerts.deliver import Notifier
from agent.alerts.pipeline import AlertPipeline
from agent.alerts.setup import build_pipeline
from agent.config.settings import Settings
from agent.core.models import Rejected
from agent.core.ports import CrmConnector, SurveySource
from agent.core.timeutil import utcnow
from agent.service.checkpoint import Checkpoints, StoppableCrm, StoppableSource
from agent.service.filedrop import FileDrop
from agent.sources.files import FilesSurveys
from agent.state.store import StateStore
from agent.sync.cycle import Computed, compute_from_state
from agent.sync.wiring import build_crm, build_notifier, build_survey_sources, build_task_crm
from agent.tasks.sync import TaskSync

__all__ = ["Runtime"]

#: A metrics document this recent, over unchanged data, serves the next job too.
_REUSE = timedelta(seconds=60)


@dataclass(slots=True)
class _Cached:
    version: int
    at: datetime
    value: Computed


@dataclass(slots=True)
class Runtime:
    """The agent's working parts; ``trigger`` asks the scheduler to run a job now."""

    settings: Settings
    store: StateStore
    crm: CrmConnector
    notifier: Notifier
    pipeline: AlertPipeline
    sources: list[SurveySource]
    checkpoints: Checkpoints
    file_drop: FileDrop | None = None
    #: The CRM's task list (rules with ``task:``); None when tasks are off.
    tasks: TaskSync | None = None
    dry_run: bool = False
    #: The next CRM sync re-reads everything (``ax-agent run --full``), then reads changes.
    full_sync: bool = False
    #: The CRM's fields passed the start-up check; until then write-back stays off.
    fields_ready: bool = False
    #: Where ``--dry-run`` prints the planned updates.
    echo: Callable[[str], None] = lambda line: None
    trigger: Callable[[str], None] = lambda _job: None
    #: Records the last survey ingestion rejected (they appear in the metrics document).
    rejected: list[Rejected] = field(default_factory=list)
    #: Why the last CRM sync failed (None once one succeeds): write-back waits for it.
    crm_sync_failed: str | None = None
    _version: int = 0
    _cached: _Cached | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: StateStore,
        *,
        dry_run: bool = False,
        full_sync: bool = False,
        checkpoints: Checkpoints | None = None,
        notifier: Notifier | None = None,
        echo: Callable[[str], None] = lambda line: None,
    ) -> Runtime:
        """Every configured part; raises ``ConfigError`` (or a vendor error) when one is wrong."""
        checks = checkpoints or Checkpoints()
        notify = notifier or build_notifier(settings)
        crm = build_crm(settings, dry_run=dry_run)
        return cls(
            settings=settings,
            store=store,
            crm=StoppableCrm(crm, checks),
            notifier=notify,
            pipeline=build_pipeline(settings, store.engine, notify),
            sources=build_survey_sources(settings, utcnow()),
            checkpoints=checks,
            file_drop=(
                FileDrop(settings.file_drop, store) if settings.file_drop.path is not None else None
            ),
            tasks=_task_sync(settings, store, crm, checks),
            dry_run=dry_run,
            full_sync=full_sync,
            echo=echo,
        )

    def survey_sources(self, as_of: datetime) -> list[SurveySource]:
        """The survey sources for a run at ``as_of``, each stopping between pages."""
        fresh: list[SurveySource] = [
            FilesSurveys(s.folder, as_of) if isinstance(s, FilesSurveys) else s
            for s in self.sources
        ]
        return [StoppableSource(s, self.checkpoints) for s in fresh]

    def data_changed(self) -> None:
        """Responses or CRM records changed: the next job computes the figures afresh."""
        with self._lock:
            self._version += 1

    def computed(self, now: datetime) -> Computed:
        """The metrics over the state, reused for a minute while no data changed."""
        with self._lock:
            version, cached = self._version, self._cached
        if cached is not None and cached.version == version and now - cached.at < _REUSE:
            return cached.value
        value = compute_from_state(
            self.store, self.crm.name, now, self.settings.metrics, self.rejected
        )
        with self._lock:
            self._cached = _Cached(version, now, value)
        return value

    def reset_budgets(self) -> None:
        """Start a new run's API budget on connectors that keep one."""
        inner = getattr(self.crm, "inner", self.crm)
        reset = getattr(inner, "reset_budget", None)
        if callable(reset):
            reset()


def _task_sync(
    settings: Settings, store: StateStore, crm: CrmConnector, checks: Checkpoints
) -> TaskSync | None:
    task_crm = build_task_crm(settings, crm)
    if task_crm is None:
        return None

    def claim(what: str) -> None:
        # Each task batch: stop here when the agent is stopping; then claim the batch
        # against the leadership epoch (only the current leader creates tasks).
        checks.check()
        if checks.claim is not None:
            checks.claim(what)

    return TaskSync(
        store,
        task_crm,
        loop_sla=timedelta(hours=settings.metrics.loop_sla_hours),
        fallback_owner=settings.tasks.fallback_owner_email,
        batch_size=settings.tasks.batch_size,
        claim=claim,
    )

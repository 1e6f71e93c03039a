"""What the jobs share in one agent process: the store, the connectors, the alert pipeline.

Built once at start-up from the settings (``Runtime.build``), so a configuration
problem stops the agent before it takes the leadership; vendor clients are kept
between runs (sessions, connection pools) and their per-run budgets reset.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from agent.alerts.deliver import Notifier
from agent.alerts.pipeline import AlertPipeline, CycleReport
from agent.alerts.setup import build_pipeline
from agent.config.settings import Settings
from agent.core.compute import Excluded
from agent.core.contract import ObjectKind
from agent.core.document import TaskFigures
from agent.core.horizon import earliest
from agent.core.models import Account, Contact, Rejected, Response
from agent.core.ports import CrmConnector, SurveySource
from agent.core.timeutil import utcnow
from agent.rules.facts import ResponseFacts, response_facts
from agent.rules.history import Answers
from agent.service.checkpoint import Checkpoints, StoppableCrm, StoppableSource
from agent.service.filedrop import FileDrop
from agent.service.rerun import rerun_would_act
from agent.sources.files import FilesSurveys
from agent.state.history import StoredHistory, record_history
from agent.state.own_writes import WriteWatch
from agent.state.store import StateStore
from agent.sync.cycle import OBJECTS, Computed, SyncProgress
from agent.sync.figures import CycleFigures
from agent.sync.settled import SKIPPABLE, Settled, cycle_fingerprint, settled_state
from agent.sync.wiring import build_crm, build_notifier, build_survey_sources, build_task_crm
from agent.sync.written_base import WrittenBase
from agent.tasks.sync import TaskReport, TaskSync

__all__ = ["Runtime"]

_log = structlog.get_logger(__name__)

#: Up to this many answers noted and not decided yet are decided from their own
#: accounts; beyond, the alerts job evaluates everything (cheaper for such a batch).
_ANSWERS_ALONE = 5_000


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
    #: Told the records read after each page of a CRM sync (the command line's display).
    sync_progress: SyncProgress | None = None
    trigger: Callable[[str], None] = lambda _job: None
    #: Wakes the answers worker (``agent.service.answers``) while it runs; None: new
    #: answers are left to the alerts job.
    answered: Callable[[], None] | None = None
    #: Records the last survey ingestion rejected (they appear in the metrics document).
    rejected: list[Rejected] = field(default_factory=list)
    #: Why the last CRM sync failed (None once one succeeds): write-back waits for it.
    crm_sync_failed: str | None = None
    #: The clock of a replay (``run --once --as-of``); None: the wall clock.
    clock: datetime | None = None
    #: Recompute the figures in full every cycle (``run --full``), never in parts.
    full_compute: bool = False
    #: The cycle's computed state, shared by its jobs (built in ``build``).
    figures: CycleFigures | None = None
    #: False in a process that runs one cycle and exits: see ``CycleFigures.keep_parts``.
    keep_parts: bool = True
    #: What the last write-back left settled: the next compares only what may have moved.
    written_base: WrittenBase = field(default_factory=WrittenBase)
    #: What the last alerts job found (the demo shows it).
    last_alerts: CycleReport | None = None
    #: What the last tasks job read back and did (the demo shows it).
    last_tasks: tuple[TaskReport, TaskReport] | None = None
    #: Answers stored between cycles (webhook, file drop, survey sources) whose alerts
    #: the answers worker has not decided yet.
    _answers: list[Response] = field(default_factory=list)
    _facts: tuple[Computed, Sequence[ResponseFacts]] | None = None
    #: The task figures as of an instant, and the task generation they were read at.
    _task_figures: tuple[datetime, int, TaskFigures] | None = None
    #: Raised whenever the tasks job changed the task outbox (its only writer).
    _task_generation: int = 0
    _cycle_at: datetime | None = None
    _in_pass: bool = False
    #: This whole cycle's look at the settled state (None until a job asked).
    _decided: _Decided | None = None
    #: The moves of the input version by this whole cycle's own transactions.
    _watch: WriteWatch | None = None
    #: Per deciding job, the inputs of its last run when that run changed nothing.
    _ran_over: dict[str, _RanOver] = field(default_factory=dict)
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
        as_of: datetime | None = None,
    ) -> Runtime:
        """Every configured part; raises ``ConfigError`` (or a vendor error) when one is wrong."""
        checks = checkpoints or Checkpoints()
        notify = notifier or build_notifier(settings)
        crm = build_crm(settings, dry_run=dry_run)
        runtime = cls(
            settings=settings,
            store=store,
            crm=StoppableCrm(crm, checks),
            notifier=notify,
            pipeline=build_pipeline(settings, store.engine, notify),
            sources=build_survey_sources(settings, as_of or utcnow()),
            checkpoints=checks,
            file_drop=(
                FileDrop(settings.file_drop, store) if settings.file_drop.path is not None else None
            ),
            tasks=_task_sync(settings, store, crm, checks),
            dry_run=dry_run,
            full_sync=full_sync,
            echo=echo,
            clock=as_of,
            full_compute=full_sync,
            figures=CycleFigures(store, crm.name, settings.metrics),
        )
        if runtime.file_drop is not None:
            runtime.file_drop.on_stored = runtime.noted
        return runtime

    def survey_sources(self, as_of: datetime) -> list[SurveySource]:
        """The survey sources for a run at ``as_of``, each stopping between pages."""
        fresh: list[SurveySource] = [
            FilesSurveys(s.folder, as_of, self.store.known_response_ids)
            if isinstance(s, FilesSurveys)
            else s
            for s in self.sources
        ]
        return [StoppableSource(s, self.checkpoints) for s in fresh]

    def now(self) -> datetime:
        """The replay's instant, or the wall clock."""
        return self.clock or utcnow()

    def begin_cycle(self, *, whole_pass: bool = False) -> datetime:
        """A new cycle starts now: its jobs share one instant and one computation.

        ``whole_pass`` (``run --once``, the demo): the following jobs belong to this
        cycle, so the CRM sync does not start another one.
        """
        with self._lock:
            at = self._cycle_at
            if at is None or whole_pass or not self._in_pass:
                at = self._cycle_at = self.now()
                self._decided = None
                if self.full_compute and self.figures is not None:
                    self.figures.reset()
            if whole_pass:  # the pass runs its jobs in this thread (agent.service.cycle)
                self._watch = self.store.own_writes.watch()
            self._in_pass = self._in_pass or whole_pass
            return at

    def end_pass(self) -> None:
        with self._lock:
            self._in_pass = False
            watched, self._watch = self._watch is not None, None
        if watched:
            self.store.own_writes.stop()

    @property
    def cycle_at(self) -> datetime:
        """The current cycle's instant (a cycle starts if none has)."""
        with self._lock:
            at = self._cycle_at
        return at if at is not None else self.begin_cycle()

    def __post_init__(self) -> None:
        if self.figures is not None:
            self._wire(self.figures)

    def _wire(self, figures: CycleFigures) -> None:
        # a full load makes every row anew: the last write-back's rows would only be
        # held beside the new ones (a whole document at 50,000 accounts) to no use
        figures.on_reload = self.written_base.forget
        figures.keep_parts = self.keep_parts

    def runs_once(self) -> None:
        """This process runs one cycle and exits: its figures are computed in one pass,
        without the per-account parts that only a later change would use."""
        self.keep_parts = False
        if self.figures is not None:
            self._wire(self.figures)

    def _parts(self) -> CycleFigures:
        if self.figures is None:
            self.figures = CycleFigures(self.store, self.crm.name, self.settings.metrics)
            self._wire(self.figures)
        return self.figures

    def crm_changed(self, objects: Collection[ObjectKind] | None = None) -> None:
        """The CRM mirror changed (of ``objects`` only; None: of any): the accounts it
        touched are recomputed."""
        self._parts().crm_changed(objects)

    def responses_added(self, added: Sequence[Response]) -> None:
        """New responses were stored: their accounts are recomputed, as of now; between
        cycles, the answers worker decides their alerts at once."""
        self._parts().responses_added(added)
        batch = False
        with self._lock:
            answered = self.answered if not self._in_pass else None
            if answered is not None:
                self._answers.extend(added)
                if len(self._answers) > _ANSWERS_ALONE:  # a batch: the full path is cheaper
                    self._answers, answered, batch = [], None, True
        self._advance()
        if answered is not None:
            answered()
        elif batch:
            self.trigger("alerts")

    def stored_elsewhere(self, keys: Sequence[tuple[str, str]]) -> None:
        """Another replica stored the answers of ``keys`` ((source, response_id)): they
        are read from the store (those this agent holds already change nothing) and
        noted as if stored here, so only their accounts are recomputed."""
        if keys:
            self.responses_added(self.store.responses_by_key(keys))

    def noted(self, added: Sequence[Response]) -> None:
        """``responses_added`` for answers already stored; should noting them fail, the
        figures are read again in full at the next computation, so the stored answers
        count all the same (a repeat of them, stored once, would note nothing)."""
        try:
            self.responses_added(added)
        except Exception:
            self.data_changed()
            raise

    def data_changed(self, *, withdraw: bool = False) -> None:
        """Something changed in the state that is not known in detail (another replica);
        ``withdraw``: new answers wait for the next computation (``CycleFigures.reset``)."""
        self._parts().reset(withdraw=withdraw)
        self.written_base.forget()
        self._advance()

    def _advance(self) -> None:
        """A change between cycles is seen as of now (a new answer is inside the window)."""
        with self._lock:
            if not self._in_pass and self._cycle_at is not None:
                self._cycle_at = self.now()

    def take_answers(self) -> list[Response]:
        """The answers stored between cycles since the last call (the answers worker's)."""
        with self._lock:
            answers, self._answers = self._answers, []
            return answers

    def records(self) -> tuple[list[Account], list[Contact]]:
        """The mirror's live accounts and contacts, shared with the figures."""
        return self._parts().records()

    def response_facts(self, computed: Computed) -> Sequence[ResponseFacts]:
        """Rule facts of the computation's matched responses, built once per computation."""
        closed = self.settings.slack.loop_closed_field
        with self._lock:
            cached = self._facts
        if cached is not None and cached[0].matches is computed.matches:
            return cached[1]
        # the answers' previous answers are indexed once for every deciding job
        facts = Answers(response_facts(computed.matches, closed))
        with self._lock:
            self._facts = (computed, facts)
        return facts

    def computed(self) -> Computed:
        """This cycle's figures: computed once, shared by every job, refreshed on change."""
        crm_rejected, excluded = self._crm_left_out()
        at = self.cycle_at
        tasks = self._tasks_as_of(at)
        return self._parts().computed(
            at, [*crm_rejected, *self.rejected], excluded, tasks, on_recompute=self._forget_facts
        )

    def _forget_facts(self) -> None:
        """A new computation starts: the last one's facts (its matches, a million at
        50,000 accounts) go now, not once the new ones are built beside them."""
        with self._lock:
            self._facts = None

    def tasks_changed(self) -> None:
        """The tasks job changed the task outbox: the task figures are read again."""
        with self._lock:
            self._task_generation += 1

    def _tasks_as_of(self, at: datetime) -> TaskFigures | None:
        """The document's task section: read once per cycle instant and task change (a
        read goes over every task of the CRM; the jobs of a cycle share it)."""
        if self.tasks is None:
            return None
        with self._lock:
            generation, cached = self._task_generation, self._task_figures
        if cached is not None and cached[0] == at and cached[1] == generation:
            return cached[2]
        figures = self.tasks.figures(at)
        with self._lock:
            self._task_figures = (at, generation, figures)
        return figures

    def record_history(self, computed: Computed) -> dict[str, int]:
        """Store the computation's figures in the history: only the accounts whose figures
        moved since the last record are compared (every account after a full computation,
        e.g. the first of a process). Returns the history's counts."""
        parts = self._parts()
        document = computed.document
        changed = parts.history_changes(document)
        counts = record_history(
            self.store, self.crm.name, document, self.settings.history, changed_accounts=changed
        )
        if counts:  # recorded (history is on)
            parts.history_recorded(document)
        return counts

    # -- a deciding job over the inputs of its last run ------------------------------------

    def decision_inputs(
        self, computed: Computed, plan: Mapping[str, Any] | None, history: StoredHistory | None
    ) -> tuple[object, ...]:
        """What an alerts or escalation run reads beside the computation and the rules:
        every alert state (as a digest: the states themselves are not kept between runs),
        the silences in force at the computation's instant, the coverage plan's headline
        and the mark of the history the change rules read."""
        repo = self.pipeline.repo
        states = repo.states_digest(r.id for r in self.pipeline.registry.current.rules)
        silences = repo.silences(computed.document.as_of)
        return (states, silences, plan, None if history is None else history.mark())

    def decided_already(self, job: str, computed: Computed, inputs: tuple[object, ...]) -> bool:
        """Whether ``job`` (alerts, escalation) last ran over these very inputs and wrote
        nothing: the same computation (figures, and their instant, which is also the
        decisions' clock), rule files and ``decision_inputs``. Its decisions are a
        function of those alone, so running it again would decide the same and write
        nothing.

        In the long-running agent the alerts job runs every minute while a cycle's
        figures hold (a new cycle starts with each CRM sync); at 50,000 accounts each
        such run evaluated every rule over a million answers to find nothing new.
        Never within a whole cycle (``run --once``, the demo: each of its jobs runs once,
        or skips with the whole cycle), with ``--full`` or in a dry run."""
        with self._lock:
            if self._in_pass or self.full_compute or self.dry_run:
                return False
            last = self._ran_over.get(job)
        return (
            last is not None
            and last.computed() is computed
            and last.inputs == inputs
            and self.pipeline.registry.unchanged_since(last.rules)
        )

    def ran_over(
        self,
        job: str,
        computed: Computed,
        inputs: tuple[object, ...],
        *,
        quiet: bool,
        rules: str,
    ) -> None:
        """``job`` ran over ``computed`` and ``inputs`` (read before it started) with the
        rule files of fingerprint ``rules`` (those it evaluated: the answers worker may
        have loaded newer ones meanwhile, which the next run must evaluate).
        Remembered only when the run was ``quiet``: it recorded nothing (so the state it
        leaves is the one it read), its rules loaded and every rule evaluated (an error is
        reported again), nothing was left for the vendor; then the next run over the same
        inputs is skipped (``decided_already``)."""
        with self._lock:
            if quiet:
                self._ran_over[job] = _RanOver(weakref.ref(computed), rules, inputs)
            else:
                self._ran_over.pop(job, None)

    # -- the settled state (agent.sync.settled) -------------------------------------------

    def unchanged(self) -> bool:
        """Whether this whole cycle's computing jobs skip: the last settled cycle rests
        on the same fingerprint and its horizon is ahead. Decided once per cycle, at the
        first job that asks (after the CRM sync, the survey ingestion and the tasks'
        read-back). Never in a dry run, with ``--full``, or outside a whole cycle."""
        with self._lock:
            if self.dry_run or self.full_compute or not self._in_pass:
                return False
            if self.crm_sync_failed is not None:
                return False  # the CRM's rows as last read are not known to be current
            decided = self._decided
        if decided is not None:
            return decided.skip
        at = self.cycle_at
        watch = self._watch
        mark = watch.mark() if watch is not None else 0  # before the version is read
        version = self.store.input_version()
        fingerprint = self._fingerprint(at, version)
        settled = self.store.settled(self.crm.name)
        skip = (
            settled is not None
            and settled.fingerprint == fingerprint
            and settled.as_of <= at
            and (settled.horizon is None or at < settled.horizon)
        )
        with self._lock:
            self._decided = _Decided(fingerprint, skip, settled, version, mark)
        _log.info(
            "cycle_settled" if skip else "cycle_computes",
            reason="unchanged" if skip else _why(settled, fingerprint, at),
            settled_as_of=None if settled is None else settled.as_of.isoformat(),
            horizon=None if settled is None else _instant(settled.horizon),
        )
        return skip

    def settled(self) -> Settled | None:
        """The settled cycle this one skips on (None when it does not skip)."""
        decided = self._decided
        return decided.settled if decided is not None and decided.skip else None

    def settle(self, counts: Mapping[str, Mapping[str, int]]) -> bool:
        """At the end of a whole cycle whose jobs all succeeded (``counts``: each job's):
        record it as settled, as of the state after its own writes, when it wrote no
        input since it decided or only writes that leave a rerun nothing to do (see
        ``agent.service.rerun``). Returns whether it did."""
        decided = self._decided
        if decided is None or decided.skip or self.dry_run or not set(SKIPPABLE) <= set(counts):
            return False
        at = self.cycle_at
        version = self.store.input_version()
        why = self._unsettled(decided, version, counts)
        if why is None and self._fingerprint(at, decided.version) != decided.fingerprint:
            why = "the settings, rules or CRM files changed during the cycle"
        if why is not None:
            _log.info("cycle_not_settled", reason=why)
            return False
        fingerprint = self._fingerprint(at, version)
        computed = self.computed()
        state = settled_state(
            self.store,
            self.crm.name,
            self.settings,
            fingerprint=fingerprint,
            computed=computed,
            decisions_horizon=earliest(self.pipeline.horizon(at), self._tasks_horizon(at)),
        )
        self.store.set_settled(self.crm.name, state)
        _log.info(
            "cycle_settled_recorded",
            as_of=at.isoformat(),
            horizon=_instant(state.horizon),
            after_own_writes=version != decided.version,
        )
        return True

    def _unsettled(
        self, decided: _Decided, version: int, counts: Mapping[str, Mapping[str, int]]
    ) -> str | None:
        """Why a cycle whose inputs moved from ``decided.version`` to ``version`` does
        not settle (None: it wrote nothing, or only its own idempotent records)."""
        if version == decided.version:
            return None
        watch = self._watch
        if watch is None or not watch.only_own(decided.version, version, decided.mark):
            return "another writer changed the inputs during the cycle"
        why = rerun_would_act(counts, plan_every=self.settings.schedule.coverage_plan.every)
        if why is None and self.pipeline.repo.pending_count():
            why = "alerts wait in the outbox"
        return why

    def _tasks_horizon(self, at: datetime) -> datetime | None:
        if self.tasks is None:
            return None
        return self.tasks.horizon(self.pipeline.registry.refresh().rules.enabled(), at)

    def _fingerprint(self, at: datetime, version: int) -> str:
        inner = getattr(self.crm, "inner", self.crm)
        contents = getattr(inner, "contents", None)
        if callable(contents):
            # the plain-file CRM's left-out rows follow from its files' contents, which
            # the cursors of a successful sync name (content hashes): no need to read them
            crm_part = [contents(self.store.get_cursor(self.crm.name, o)) for o in OBJECTS]
        else:
            crm_part = None
        left_out = (crm_part, self.rejected)
        return cycle_fingerprint(
            self.store, self.crm.name, self.settings, at, left_out, version=version
        )

    def _crm_left_out(self) -> tuple[list[Rejected], Excluded]:
        """The CRM rows a plain-file CRM rejected or dropped, and its rejected accounts
        with their contacts (other CRMs: none)."""
        inner = getattr(self.crm, "inner", self.crm)
        left_out = getattr(inner, "left_out", None)
        if not callable(left_out):
            return [], Excluded()
        found: tuple[list[Rejected], Excluded]
        found = left_out({o: self.store.get_cursor(self.crm.name, o) for o in OBJECTS})
        return found

    def reset_budgets(self) -> None:
        """Start a new run's API budget on connectors that keep one."""
        inner = getattr(self.crm, "inner", self.crm)
        reset = getattr(inner, "reset_budget", None)
        if callable(reset):
            reset()


@dataclass(frozen=True, slots=True)
class _RanOver:
    """What a deciding job's run read, when that run wrote nothing: its computation (the
    figures and their instant, which is also the decisions' clock), the rule files'
    fingerprint and the rest (``Runtime.decision_inputs``)."""

    #: Weak: a new computation's matches and figures are built while the old ones can
    #: go (one computation's worth of memory, not two, at the running agent's peak).
    computed: weakref.ref[Computed]
    rules: str
    inputs: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class _Decided:
    fingerprint: str
    skip: bool
    settled: Settled | None
    #: The input version the fingerprint holds, and the cycle's own moves before it.
    version: int
    mark: int


def _instant(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _why(settled: Settled | None, fingerprint: str, at: datetime) -> str:
    if settled is None:
        return "no settled cycle"
    if settled.fingerprint != fingerprint:
        return "inputs changed"
    if at < settled.as_of:
        return "an instant before the settled cycle"
    return "the horizon passed"


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

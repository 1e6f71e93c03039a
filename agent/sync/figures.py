"""The cycle's computed state: one computation shared by every job of a cycle.

Write-back, alerts, escalation and the report read the same ``Computed``. It is
recomputed only when data changed (CRM records, responses) or the cycle's instant
moved, never because time passed: a job asking again at the same instant with no
change gets the same object back.

After the first full computation the figures are kept in per-account parts
(``agent.core.incremental.Figures``): a change recomputes the accounts it reaches.
The parts live in memory only; a process that starts (or restarts after a crash)
rebuilds them from the state database with one full computation, so it always
converges to the full result. ``full=True`` forces that full path.

New answers are decided apart from the cycle (``answers``), on another thread, from
the figures of the last computation, published as they were: a refresh never changes
published figures (it works on a ``Figures.clone()``, or on new ones for a full load),
so the answers path reads them without waiting for the computation in progress. It
places the answers noted since those figures were taken, in a private layer, and
computes their accounts only.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from agent.core.compute import (
    Computed,
    Excluded,
    MatchedResponse,
    compute_with_matches,
    without_gc,
)
from agent.core.contract import MetricsConfig, ObjectKind
from agent.core.document import AccountMetrics, MetricsDocument, TaskFigures
from agent.core.incremental import Figures
from agent.core.models import Account, Contact, Rejected, Response
from agent.state.store import StateStore

__all__ = ["CycleFigures"]

_log = structlog.get_logger(__name__)

#: More new responses than this since the last refresh: reloading is cheaper than placing.
_RELOAD_AFTER = 200_000
#: The answers path places at most this many responses noted since the published figures
#: (beyond, an answer is decided from those figures and itself; the cycle decides again).
_LAYER_AT_MOST = 5_000


@dataclass(slots=True)
class _Last:
    generation: int
    as_of: datetime
    rejected: tuple[Rejected, ...]
    excluded: Excluded
    tasks: TaskFigures | None
    value: Computed


@dataclass(frozen=True, slots=True)
class _Published:
    """The last computation's figures and document, never changed again."""

    figures: Figures
    document: MetricsDocument


class CycleFigures:
    """The figures of one CRM's portfolio over the state, kept up to date in parts."""

    def __init__(self, store: StateStore, crm: str, config: MetricsConfig) -> None:
        self.store = store
        self.crm = crm
        self.config = config
        self._figures: Figures | None = None
        self._crm_changed = False
        #: The objects whose mirror records changed since the last look (None: any).
        self._crm_objects: set[ObjectKind] | None = set()
        self._new: list[Response] = []
        self._generation = 0
        self._last: _Last | None = None
        self._stale = False
        #: The mirror's accounts and contacts as last loaded (what the figures rest on).
        self._records: tuple[list[Account], list[Contact]] | None = None
        #: Accounts whose figures moved since history last recorded (None: any may have).
        self._unrecorded: set[str] | None = None
        #: Refreshes so far, and how many there were when ``_last`` was computed.
        self._refreshes = 0
        self._last_refresh = -1
        #: Held for the whole computation; ``_noted`` only for noting a change.
        self._lock = threading.RLock()
        self._noted = threading.Lock()
        #: What the answers path reads (under ``_noted``); replaced, never changed.
        self._published: _Published | None = None
        #: Responses noted so far, and those noted since the changes the published
        #: figures hold were taken (``_since[0]`` is the ``_since_base``-th noted).
        self._noted_total = 0
        self._since: list[Response] = []
        self._since_base = 0
        #: ``_noted_total`` when the working figures last took the noted changes.
        self._taken = 0
        #: Told before the figures are loaded and computed in full (every row is new).
        self.on_reload: Callable[[], None] | None = None
        #: False in a process that computes once and exits (``run --once``): the figures
        #: are computed in one pass (``compute_with_matches``), no per-account parts are
        #: built or kept (about 3 s and 200 MB at 50,000 accounts), and nothing is
        #: published for the answers path (its answers are decided by the cycle's jobs).
        self.keep_parts = True

    # -- what changed -------------------------------------------------------------------

    def crm_changed(self, objects: Collection[ObjectKind] | None = None) -> None:
        """The CRM mirror changed (records added, changed or deleted): of ``objects``
        only (the others are as held, and are not read again), or of any (None)."""
        with self._noted:
            self._crm_changed = True
            if objects is None or self._crm_objects is None:
                self._crm_objects = None
            else:
                self._crm_objects.update(objects)
            self._generation += 1

    def responses_added(self, responses: Sequence[Response]) -> None:
        """Responses were stored (only the new ones). Never waits for a computation
        in progress: the webhook's thread calls this before it answers."""
        if not responses:
            return
        with self._noted:
            self._generation += 1
            self._new.extend(responses)
            if len(self._new) > _RELOAD_AFTER:
                self._new = []
                self._stale = True
            self._noted_total += len(responses)
            self._since.extend(responses)
            if len(self._since) > _LAYER_AT_MOST:
                self._since, self._since_base = [], self._noted_total

    def reset(self, *, withdraw: bool = False) -> None:
        """Something changed that is not known in detail: the next request computes in full.

        ``withdraw``: the published figures stop being the answers path's base until
        then (another replica led and decided since they were computed: deciding over
        them could re-arm or repeat its alerts)."""
        with self._noted:
            if withdraw:
                self._published = None
            self._stale = True
            self._new = []
            self._crm_changed = False
            self._crm_objects = set()
            self._generation += 1

    def _take_changes(
        self,
    ) -> tuple[bool, bool, set[ObjectKind] | None, list[Response], int]:
        """What was noted since the last look: (stale, crm changed, of which objects,
        new responses, generation)."""
        with self._noted:
            taken = (
                self._stale,
                self._crm_changed,
                self._crm_objects,
                self._new,
                self._generation,
            )
            self._stale, self._crm_changed, self._new = False, False, []
            self._crm_objects = set()
            self._taken = self._noted_total
            return taken

    def _publish(self, figures: Figures, document: MetricsDocument) -> None:
        """The answers path reads ``figures`` from now on; the responses they hold are no
        longer placed in its layer."""
        with self._noted:
            held = self._taken - self._since_base
            if held > 0:
                del self._since[:held]
                self._since_base = self._taken
            self._published = _Published(figures, document)

    # -- the figures --------------------------------------------------------------------

    def computed(
        self,
        as_of: datetime,
        rejected: Sequence[Rejected] = (),
        excluded: Excluded | None = None,
        tasks: TaskFigures | None = None,
        *,
        on_recompute: Callable[[], None] | None = None,
    ) -> Computed:
        """The figures as of ``as_of``; the same object while nothing changed.

        ``rejected`` and ``excluded.dropped``: the input rows reading left out, for the
        document; ``excluded.accounts`` and ``.contacts``: the CRM's rejected accounts and
        their contacts, whose responses are unmatched as ``account_rejected``; ``tasks``:
        the CRM task figures, its ``tasks`` section (None: none); ``on_recompute``: told
        when the figures are about to be computed anew, so that the caller lets go of what
        it keeps of the last computation (only one computation's matches are held at a
        time)."""
        excluded = excluded or Excluded()
        with self._lock:
            with self._noted:
                generation, last = self._generation, self._last
            if (
                last is not None
                and last.generation == generation
                and last.as_of == as_of
                and last.rejected == tuple(rejected)
                and last.excluded == excluded
            ):
                if last.tasks == tasks:
                    return last.value
                # Only the task figures moved: the same figures, the new section.
                value = replace(last.value, document=replace(last.value.document, tasks=tasks))
                self._last = replace(last, tasks=tasks, value=value)
                return value
            # The last computation's document and matches go before the new ones are
            # built (the answers path reads the published figures, kept as they are).
            self._last = last = None
            if on_recompute is not None:
                on_recompute()
            try:
                with without_gc():
                    if not self.keep_parts:
                        value, generation = self._computed_once(as_of, rejected, excluded)
                        value = replace(value, document=replace(value.document, tasks=tasks))
                        figures = None
                    else:
                        figures, generation = self._refreshed(as_of)
                        figures.set_left_out(excluded)
                        document = figures.document(rejected, excluded.dropped)
                        document = replace(document, tasks=tasks)
                        value = Computed(document, figures.accounts(), figures.matches())
                    _FREEZER.freeze()
            except BaseException:
                self._drop()
                raise
            self._last = _Last(generation, as_of, tuple(rejected), excluded, tasks, value)
            self._last_refresh = self._refreshes
            if figures is not None:
                self._publish(figures, value.document)
            return value

    def _computed_once(
        self, as_of: datetime, rejected: Sequence[Rejected], excluded: Excluded
    ) -> tuple[Computed, int]:
        """The whole portfolio computed in one pass, as ``Figures`` would give it (a
        property test holds the two equal), without per-account parts."""
        stale, crm_changed, _, new, generation = self._take_changes()
        new.clear()
        if self.on_reload is not None:
            self.on_reload()
        self._figures = None
        records = self._records
        if records is None or stale or crm_changed:
            self._records = None
            records = self._load_records()
        accounts, contacts = records
        document, matches = compute_with_matches(
            accounts,
            contacts,
            self.store.load_responses(),
            as_of=as_of,
            config=self.config,
            rejected=rejected,
            excluded=excluded,
        )
        self._records = records
        self._unrecorded = None
        self._refreshes += 1
        _log.info("figures_computed_once", accounts=len(document.accounts), as_of=as_of.isoformat())
        return Computed(document, accounts, matches), generation

    def history_changes(self, document: MetricsDocument) -> frozenset[str] | None:
        """The accounts whose figures may have moved since history last recorded, when
        ``document`` is the latest computation; None: any may have (a full computation
        since, or another document), so history compares every account."""
        with self._lock:
            if self._unrecorded is None or not self._is_latest(document):
                return None
            return frozenset(self._unrecorded)

    def history_recorded(self, document: MetricsDocument) -> None:
        """History now holds ``document``: what moves after it is what the next one compares."""
        with self._lock:
            if self._is_latest(document):
                self._unrecorded = set()

    def _is_latest(self, document: MetricsDocument) -> bool:
        last = self._last
        return (
            last is not None
            and last.value.document is document
            and self._last_refresh == self._refreshes
        )

    def answers(
        self, responses: Sequence[Response], as_of: datetime
    ) -> tuple[MetricsDocument, dict[str, AccountMetrics], list[MatchedResponse]] | None:
        """The last computation's document, with the figures of the accounts ``responses``
        reached as of ``as_of`` and those responses matched; None before the first
        computation. Never waits for a computation in progress (any thread may ask).

        From the published figures, with the responses noted since they were taken and
        ``responses`` placed in a private layer: only those accounts are computed, and
        nothing is taken from the changes the next refresh brings in. Figures computed
        before a CRM change or a reset still decide: the answer's account as last
        computed, and the answer (the cycle's full evaluation that follows decides
        again; alerts are keyed, so nothing is sent twice).
        """
        with self._noted:
            published, since = self._published, list(self._since)
        if published is None:
            return None
        metrics, matches = published.figures.view(responses, as_of, new=[*since, *responses])
        return published.document, metrics, matches

    def figures(self, as_of: datetime) -> Figures:
        """The per-account parts brought to ``as_of`` (for a single account's questions)."""
        with self._lock:
            try:
                return self._refreshed(as_of)[0]
            except BaseException:
                self._drop()
                raise

    def records(self) -> tuple[list[Account], list[Contact]]:
        """The mirror's live accounts and contacts (as the figures last loaded them, while
        the mirror has not changed since)."""
        with self._lock:
            with self._noted:
                current = not (self._stale or self._crm_changed)
            if current and self._records is not None:
                return self._records
            return self._load_records()

    def _load_records(
        self,
        reuse: tuple[list[Account], list[Contact]] | None = None,
        objects: Collection[ObjectKind] | None = None,
    ) -> tuple[list[Account], list[Contact]]:
        """The mirror's live records; ``reuse``: the records held now, each one read
        equal is kept (not held twice through the computation that follows);
        ``objects``: only these changed, the others are the lists held (None: any)."""
        accounts, contacts = reuse or ([], [])
        if reuse is None or objects is None or "account" in objects:
            accounts = self.store.load_accounts(self.crm, accounts)
        if reuse is None or objects is None or "contact" in objects:
            contacts = self.store.load_contacts(self.crm, contacts)
        return accounts, contacts

    def _drop(self) -> None:
        """Half-updated parts are dropped: the next request starts over in full."""
        self._figures = None
        self._records = None
        self._last = None
        self.reset()

    def _refreshed(self, as_of: datetime) -> tuple[Figures, int]:
        stale, crm_changed, objects, new, generation = self._take_changes()
        figures = None if stale else self._figures
        published = self._published
        if figures is not None and published is not None and figures is published.figures:
            figures = self._figures = figures.clone()  # the published figures stay as they are
        if figures is None:
            # the store holds the noted responses too: not kept alive through the load
            # (200,000 of them, a first ingest's, would sit beside the same ones loaded)
            new.clear()
            if self.on_reload is not None:
                self.on_reload()
            figures = Figures(self.config)
            self._records = None
            records = self._load_records()
            figures.load(*records, self.store.load_responses(), stored_order=True)
            self._records, self._figures = records, figures
        else:
            if crm_changed:
                held, self._records = self._records, None
                records = self._load_records(reuse=held, objects=objects)
                del held
                figures.set_crm(*records)
                self._records = records
            if new:
                figures.add_responses(new)
        report = figures.refresh(as_of)
        self._refreshes += 1
        if report.full:
            self._unrecorded = None
        elif self._unrecorded is not None:
            self._unrecorded |= report.changed
        _log.info(
            "figures_refreshed",
            full=report.full,
            accounts=report.accounts,
            rescored=report.rescored,
            as_of=as_of.isoformat(),
        )
        return figures, generation


class _Freezer:
    """Takes what a computation leaves alive out of the cycle collector's reach
    (``gc.freeze``), with a bound on the garbage that stays frozen.

    A computation leaves millions of long-lived objects (responses, the per-account
    parts, the document, the matches). They were made with the collector paused
    (``without_gc``); once it resumed, its first pass scanned them all, holding every
    thread for one to four seconds at 1,000,000 answers, and an answer arriving
    meanwhile (decided on another thread) waited for it. They hold no reference cycles:
    reference counting frees them when they go, frozen or not. Frozen, they are never
    scanned. No collection first: the new objects are all young, so it would be the
    very pass this avoids.

    What freezing keeps is the garbage cycles pending at that moment (a few thousand
    objects per computation: compiled statements, a library's exceptions). So when the
    frozen objects have grown ``growth`` times since the last collection, they are
    unfrozen and collected once (one pass, where there was one per computation),
    which bounds them to that factor of the live objects. One per process: the
    collector is."""

    def __init__(self, growth: float = 2.0) -> None:
        self.growth = growth
        self.collections = 0
        self._after_collection = 0
        self._lock = threading.Lock()

    def freeze(self) -> None:
        with self._lock:
            gc.freeze()
            frozen = gc.get_freeze_count()
            if self._after_collection == 0:
                self._after_collection = frozen
            elif frozen > self.growth * self._after_collection:
                gc.unfreeze()
                collected = gc.collect()
                gc.freeze()
                self._after_collection = gc.get_freeze_count()
                self.collections += 1
                _log.info(
                    "frozen_objects_collected",
                    frozen=frozen,
                    garbage=collected,
                    kept=self._after_collection,
                )


_FREEZER = _Freezer()

"""One agent cycle, wired from the pure core and the ports.

sync the CRM mirror -> ingest survey responses -> compute the metrics document ->
write back changed fields. Each step is its own function so the scheduler can run
them on separate cadences; each commits its cursor together with its data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

import structlog

from agent.alerts.pipeline import AlertPipeline, CycleReport
from agent.core.batching import chunked
from agent.core.compute import Computed, compute_with_matches, without_gc
from agent.core.contract import FieldSpec, MetricsConfig, ObjectKind
from agent.core.document import AccountMetrics, ContactFigures, MetricsDocument
from agent.core.errors import KnownError
from agent.core.models import Account, Contact, Rejected, Response
from agent.core.ports import (
    Batch,
    CrmConnector,
    CursorAfterWrite,
    FieldProblem,
    FieldUpdate,
    FieldValue,
    SurveySource,
    WriteOutcome,
)
from agent.rules.facts import (
    ResponseFacts,
    RuleInputs,
    account_inputs,
    build_inputs,
    response_facts,
)
from agent.rules.history import HistorySource
from agent.state.history import history_fields
from agent.state.ops_mirror import Echo
from agent.state.pieces import commit_in_pieces
from agent.state.records import WrittenSettlement
from agent.state.store import StateStore
from agent.state.tx import StateTx
from agent.sync.coverage import wants_survey_next
from agent.sync.figures import CycleFigures
from agent.sync.writeback import (
    Differ,
    WritebackCounts,
    execute,
    row_id,
    specs_digest,
)
from agent.sync.written_base import ROW_ID, DocRow, WrittenOver

#: Told after each page a CRM sync reads: the object, records and pages read so far, and
#: whether that object's read ended (``True`` once, also when it failed).
SyncProgress = Callable[[ObjectKind, int, int, bool], None]

__all__ = [
    "OBJECTS",
    "Computed",
    "FieldsNotReadyError",
    "SyncProgress",
    "WritebackPlan",
    "WritebackStream",
    "check_fields",
    "compute_from_state",
    "evaluate_alerts",
    "evaluate_answers",
    "ingest_surveys",
    "plan_writeback",
    "rule_inputs",
    "run_writeback",
    "sync_crm",
]

_log = structlog.get_logger(__name__)
OBJECTS: tuple[ObjectKind, ...] = ("account", "contact")
R = TypeVar("R", Account, Contact)


def sync_crm(
    store: StateStore,
    crm: CrmConnector,
    *,
    full: bool = False,
    progress: SyncProgress | None = None,
    on_changed: Callable[[ObjectKind, list[str]], None] | None = None,
    specs: Sequence[FieldSpec] = (),
) -> dict[str, int]:
    """Bring the state's mirror of accounts and contacts up to date with the CRM.

    ``progress``, given, is told the records read after every page (the total is not
    known ahead: a CRM pages until it has no more); ``on_changed`` the ids of the
    records stored new, changed or live again, and of those a page deletes, before
    they commit (a record read again the same, or with only the agent's own values
    back, is not told). ``specs``: the write-back fields, by which a record that
    differs from the mirror only in the agent's fields, each holding what the agent
    last wrote there, is known as the agent's own write read back
    (``MirrorOps.stamp_records``): stored, counted as ``{object}s_echoed``, not as
    changed."""
    counts: dict[str, int] = {}
    for obj in OBJECTS:
        echo = Differ(specs, crm.name, obj).same_value if specs else None
        cursor = None if full else store.get_cursor(crm.name, obj)
        pages: Iterable[Batch[Any]] = (
            crm.read_accounts(cursor) if obj == "account" else crm.read_contacts(cursor)
        )
        seen = _Seen(obj, progress)
        told = None if on_changed is None else functools.partial(on_changed, obj)
        try:
            changed, deleted, echoed = _apply_pages(
                store,
                crm.name,
                obj,
                seen.pages(pages),
                full_read=cursor is None,
                on_changed=told,
                echo=echo,
            )
        finally:
            seen.done()
        counts[f"{obj}s_read"] = seen.records
        counts[f"{obj}s_changed"] = changed
        counts[f"{obj}s_deleted"] = deleted
        counts[f"{obj}s_echoed"] = echoed
    _log.info("crm_synced", crm=crm.name, full=full, **counts)
    return counts


class _Seen:
    """Counts the pages of one object's read for a progress display."""

    def __init__(self, obj: ObjectKind, progress: SyncProgress | None) -> None:
        self.obj, self.progress = obj, progress
        self.records = self.count = 0

    def pages(self, pages: Iterable[Batch[R]]) -> Iterator[Batch[R]]:
        for page in pages:
            yield page
            self.records += len(page.records)
            self.count += 1
            if self.progress is not None:
                self.progress(self.obj, self.records, self.count, False)

    def done(self) -> None:
        if self.progress is not None:
            self.progress(self.obj, self.records, self.count, True)


def _apply_pages(
    store: StateStore,
    crm: str,
    obj: ObjectKind,
    pages: Iterable[Batch[R]],
    *,
    full_read: bool,
    on_changed: Callable[[list[str]], None] | None = None,
    echo: Echo | None = None,
) -> tuple[int, int, int]:
    """Store each page with its cursor; a snapshot or a full read replaces the mirror.
    Returns how many records were new, changed or live again, how many were deleted
    (a record read again with the same fields is neither), and how many were read
    back with only the agent's own values new (``echoed``). ``on_changed``, ``echo``:
    as ``sync_crm`` says.

    A snapshot source yields no page while unchanged; one page without records is a
    snapshot of an empty CRM and still replaces the mirror.
    """
    snapshot: list[R] = []
    whole = full_read
    own_values = True  # every page of a whole read says so
    last_cursor: str | None = None
    changed = deleted = 0
    echoed: list[str] = []
    any_page = False
    for page in pages:
        any_page = True
        whole = whole or page.snapshot
        if whole:
            snapshot.extend(page.records)
            own_values = own_values and page.own_values
            last_cursor = page.cursor or last_cursor
            continue
        with store.transaction() as tx:
            changed += tx.upsert_records(
                crm,
                obj,
                page.records,
                own_values=page.own_values,
                echo=echo,
                on_changed=on_changed,
                on_echoed=echoed.extend,
            )
            if on_changed is not None and page.deleted_ids:
                on_changed(list(page.deleted_ids))
            tx.mark_deleted(crm, obj, page.deleted_ids)
            if page.cursor is not None:
                tx.set_cursor(crm, obj, page.cursor)
        deleted += len(page.deleted_ids)
    if whole and (any_page or full_read):
        # Piece by piece, the deletions and the cursor last (``StateStore.replace_all``
        # says why a crash part-way converges): a webhook's answer waits for one
        # piece, not for a whole CRM's records.
        replaced, gone = store.replace_all(
            crm,
            obj,
            snapshot,
            cursor=last_cursor,
            own_values=own_values,
            echo=echo,
            on_changed=on_changed,
            on_echoed=echoed.extend,
        )
        changed += replaced
        deleted += gone
    return changed, deleted, len(echoed)


def ingest_surveys(
    store: StateStore,
    sources: Sequence[SurveySource],
    on_added: Callable[[Sequence[Response]], None] = lambda _added: None,
) -> tuple[dict[str, int], list[Rejected]]:
    """Store new responses from every source; return counts and the rejected records.

    ``on_added`` is told of each page's new responses once they are committed. The
    rejected records include those an unchanged source still holds (a files source
    lists them every cycle); ``responses_rejected`` counts only the records read now.
    """
    counts = {"responses_new": 0, "responses_repeated": 0, "responses_conflicting": 0}
    counts["responses_rejected"] = 0
    rejected: list[Rejected] = []
    for source in sources:
        cursor = store.get_cursor(source.name, "responses")
        for page in source.read_responses(cursor):
            rejected.extend(page.rejected)
            if not page.responses and cursor is not None and page.cursor == cursor:
                continue  # only the rejected records an unchanged source still holds
            counts["responses_rejected"] += len(page.rejected)
            with store.transaction() as tx:
                result = tx.add_responses(page.responses)
                if page.cursor is not None:
                    tx.set_cursor(source.name, "responses", page.cursor)
            on_added(result.added)
            counts["responses_new"] += len(result.added)
            counts["responses_repeated"] += result.duplicates
            counts["responses_conflicting"] += len(result.conflicts)
    _log.info("surveys_ingested", **counts)
    return counts, rejected


def compute_from_state(
    store: StateStore,
    crm: str,
    as_of: datetime,
    config: MetricsConfig,
    rejected: Sequence[Rejected] = (),
) -> Computed:
    """The metrics document over the mirrored portfolio and every stored response (the
    mirror as a full read left it: ``StateStore.load_mirror`` waits for one under way)."""
    accounts, contacts = store.load_mirror(crm)
    document, matches = compute_with_matches(
        accounts,
        contacts,
        store.load_responses(),
        as_of=as_of,
        config=config,
        rejected=rejected,
    )
    return Computed(document, accounts, matches)


def rule_inputs(
    computed: Computed,
    closed_field: str | None,
    plan: Mapping[str, Any] | None = None,
    history: HistorySource | None = None,
    facts: Sequence[ResponseFacts] | None = None,
) -> RuleInputs:
    """What the alert rules see of this cycle's figures (the coverage plan's headline and,
    given, the figures' history); ``facts``: the responses' facts, when built already."""
    return build_inputs(
        computed.document,
        computed.accounts,
        response_facts(computed.matches, closed_field) if facts is None else facts,
        plan,
        history=history,
    )


def evaluate_alerts(
    pipeline: AlertPipeline,
    computed: Computed,
    closed_field: str | None,
    now: datetime,
    *,
    escalate: bool = True,
    plan: Mapping[str, Any] | None = None,
    history: HistorySource | None = None,
    facts: Sequence[ResponseFacts] | None = None,
) -> CycleReport:
    """Evaluate the rules over this cycle's figures, record alerts, deliver the outbox.

    ``escalate=False`` leaves the escalation checks to their own job.
    """
    inputs = rule_inputs(computed, closed_field, plan, history, facts)
    report = pipeline.run(inputs, now, escalate=escalate)
    _log.info(
        "alerts_evaluated",
        rules=report.rules,
        matches=report.matches,
        recorded=report.recorded,
        rules_error=report.rules_error,
    )
    return report


def evaluate_answers(
    pipeline: AlertPipeline,
    figures: CycleFigures,
    answers: Sequence[Response],
    closed_field: str | None,
    now: datetime,
    *,
    plan: Mapping[str, Any] | None = None,
    history: HistorySource | None = None,
) -> CycleReport | None:
    """New answers' alerts from their own accounts' figures (recomputed as of ``now``)
    over the last computation's published figures: the portfolio is not touched and a
    computation in progress is not waited for (any thread may call this). None when
    there is no computation to start from yet."""
    view = figures.answers(answers, now)
    if view is None:
        return None
    document, metrics, matches = view
    entities = {m.account.id: m.account for m in matches}
    chosen = {a: (entities.get(a) or _entity(m), m) for a, m in metrics.items()}
    facts = response_facts(matches, closed_field)
    inputs = account_inputs(document, chosen, facts, now, plan=plan, history=history)
    return pipeline.respond(inputs, now)


def _entity(metrics: AccountMetrics) -> Account:
    return Account(id=metrics.id, name=metrics.name, revenue=metrics.revenue)


#: Records planned at a time: the desired and current values of this many are held at
#: once (the updates wait for their batch, whose size is the CRM's).
PLAN_CHUNK = 5_000


#: A part of a plan: its updates in id order and the CRM's value of each changed field
#: before the write (record -> field).
Piece = tuple[list[FieldUpdate], dict[str, dict[str, FieldValue]]]

#: Which records of an object a write-back compares (``WrittenBase.take``; None: all).
Due = Callable[[ObjectKind, Sequence[DocRow], WrittenOver], set[str] | None]


@dataclass(frozen=True, slots=True)
class WritebackPlan:
    """The updates the CRM needs, per object, after comparing with what it holds."""

    updates: dict[ObjectKind, list[FieldUpdate]] = field(default_factory=dict)
    #: The CRM's value of each changed field before the write (object -> record -> field).
    before: dict[ObjectKind, dict[str, dict[str, FieldValue]]] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(len(u) for u in self.updates.values())

    def lines(self, crm: str) -> Iterator[str]:
        """The plan for a person (``--dry-run``): one line per field, ``id field old → new``."""
        return _lines(crm, ((u, self.before.get(obj, {})) for obj, u in self.updates.items()))


def _lines(crm: str, pieces: Iterable[Piece]) -> Iterator[str]:
    fields = records = 0
    for updates, old in pieces:
        for update in updates:
            for name, value in sorted(update.values.items()):
                was = old.get(update.record_id, {}).get(name)
                yield f"{update.record_id} {name} {_shown(was)} → {_shown(value)}"
                fields += 1
        records += len(updates)
    yield f"{crm}: {fields} field(s) of {records} record(s) would be written"


def _shown(value: FieldValue) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, tuple):
        return ";".join(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).lower() if isinstance(value, bool) else str(value)


def plan_writeback(
    store: StateStore,
    crm: CrmConnector,
    doc: MetricsDocument,
    specs: Sequence[FieldSpec],
    records: tuple[Sequence[Account], Sequence[Contact]] | None = None,
) -> WritebackPlan:
    """The whole plan at once (``WritebackStream``'s, kept)."""
    return WritebackStream(store, crm, doc, specs, records).whole()


class WritebackStream:
    """The write-back plan, made a chunk of records at a time in id order while it is
    sent: the figures compared with the CRM's values as last read, overlaid with the
    writes the CRM confirmed after that read (so a value edited in the CRM is written
    again).

    Only a chunk's desired and current values are held at once: the updates of one
    chunk are planned after the batches before them were sent and recorded, and the
    writes recorded since touch only records of earlier chunks, so the plan is the one
    the whole portfolio compared at the start would give. What the plan depends on
    besides (the coverage plan's contacts, the figure history) is read at once.

    ``records`` are the mirror's accounts and contacts when the caller holds them already.
    """

    def __init__(
        self,
        store: StateStore,
        crm: CrmConnector,
        doc: MetricsDocument,
        specs: Sequence[FieldSpec],
        records: tuple[Sequence[Account], Sequence[Contact]] | None = None,
        *,
        chunk: int = PLAN_CHUNK,
        due: Due | None = None,
        settling: bool = False,
        consult: bool = True,
    ) -> None:
        #: Reads after this instant are due again at the next settled write-back.
        self.read_from = datetime.now(UTC)
        self.store, self.crm, self.doc, self.specs = store, crm.name, doc, specs
        self.mirrored = records
        self.chunk = chunk
        self.survey_next = store.survey_plan_ids(crm.name) if wants_survey_next(specs) else None
        self.extra = history_fields(store, crm.name, doc, specs)
        self.objects = [obj for obj in OBJECTS if any(s.object == obj for s in specs)]
        self._planned: dict[ObjectKind, int] = {}
        #: Per object, the records compared with the CRM's values.
        self._compared: dict[ObjectKind, int] = {}
        #: What this plan rests on (``agent.sync.written_base``): the rows of each object
        #: once its pieces were made.
        self.over = WrittenOver(
            tuple(specs),
            self.extra,
            None if self.survey_next is None else frozenset(self.survey_next),
        )
        self._due = due
        #: ``settling``: an object planned without ``due``'s base keeps a digest of each
        #: record's values, and ``settle`` stores what moved; ``consult``: the stored
        #: settlement names the records to compare (``agent.sync.written_base``).
        self._settling = settling
        self._consult = consult
        self._specs_key = specs_digest(specs)
        #: Per object planned without a base: the digests that moved (None: every
        #: record's, made again piece by piece when settled).
        self._settled: dict[ObjectKind, dict[str, str] | None] = {}

    @property
    def compared(self) -> int:
        """The records compared with the CRM's values so far."""
        return sum(self._compared.values())

    @property
    def records(self) -> int:
        """The records planned so far (all of them once every object's pieces were made)."""
        return sum(self._planned.values())

    def whole(self) -> WritebackPlan:
        """Every piece, kept: the plan of the whole portfolio."""
        plan = WritebackPlan()
        for obj in self.objects:
            updates = plan.updates[obj] = []
            before = plan.before[obj] = {}
            for piece, was in self.pieces(obj):
                updates.extend(piece)
                before.update(was)
        return plan

    def lines(self) -> Iterator[str]:
        """``WritebackPlan.lines``, a chunk at a time."""
        return _lines(self.crm, (p for obj in self.objects for p in self.pieces(obj)))

    def updates(self, obj: ObjectKind) -> Iterator[FieldUpdate]:
        """``obj``'s updates in id order, planned as they are taken."""
        for updates, _none in self.pieces(obj, before=False):
            yield from updates

    def pieces(self, obj: ObjectKind, *, before: bool = True) -> Iterator[Piece]:
        """``obj``'s plan, a chunk of records at a time (a chunk may need no update);
        ``before=False`` leaves out the CRM's values before the write (only shown)."""
        differ = Differ(self.specs, self.crm, obj)
        extra = self.extra if obj == "account" else None
        rows = self.over.rows[obj] = _unique(*self._rows(obj))
        due = None if self._due is None else self._due(obj, rows, self.over)
        if due is None and self._settling:
            due = self._settled_due(obj, rows)
        if due is not None:
            key = ROW_ID[obj]
            rows = [row for row in rows if key(row) in due]
        self._compared[obj] = len(rows)
        mirror = _Mirror(self._mirrored(obj))
        self._planned[obj] = 0
        for part in chunked(rows, self.chunk):
            chunk = self._with_survey_next(part)
            ids = [row_id(r) for r in chunk]
            current = mirror.values(ids)
            for rid, values in self.store.written_since_read(self.crm, obj, ids).items():
                current[rid] = {**current.get(rid, {}), **values}
            with without_gc():  # dicts per record: acyclic, and many in a large process
                updates = differ.changes(chunk, current, extra)
                was = differ.before(updates, current) if before else {}
            self._planned[obj] += len(updates)
            yield updates, was

    def _settled_due(self, obj: ObjectKind, rows: Sequence[DocRow]) -> set[str] | None:
        """The records to compare by the stored settlement (None: every record): those
        whose values moved since it (or whose write failed: no digest is stored), that a
        sync changed after it began, or that were written after it ended. Keeps the digests
        that moved, for ``settle``; a piece of records at a time, so that no whole
        portfolio's digests are held (550,000 at 50,000 accounts)."""
        settled = self.store.written_settlement(self.crm, obj) if self._consult else None
        if settled is None or settled.specs != self._specs_key:
            self._settled[obj] = None
            return None
        moved: dict[str, str] = {}
        for digests in self._digests(obj, rows):
            held = self.store.settled_digests(self.crm, obj, list(digests))
            moved.update((rid, d) for rid, d in digests.items() if held.get(rid) != d)
        self._settled[obj] = moved
        due = set(moved)
        due |= self.store.moved_since_settled(self.crm, obj, settled.read_from, settled.written_to)
        return due

    def settle(self, failed: Mapping[ObjectKind, Iterable[str]]) -> None:
        """The write-back ran to its end: store what it settled of the objects planned
        without ``due``'s base (``failed``: the records whose write was refused)."""
        head = WrittenSettlement(self._specs_key, self.read_from, datetime.now(UTC))
        for obj, moved in self._settled.items():
            refused = set(failed.get(obj, ()))
            pieces: Iterable[Mapping[str, str]]
            if moved is None:
                pieces = (
                    {rid: d for rid, d in digests.items() if rid not in refused}
                    for digests in self._digests(obj, self.over.rows[obj])
                )
            else:
                pieces = [{rid: d for rid, d in moved.items() if rid not in refused}]
            self.store.settle_written(self.crm, obj, head, pieces, refused, whole=moved is None)
        self._settled = {}

    def _digests(self, obj: ObjectKind, rows: Sequence[DocRow]) -> Iterator[dict[str, str]]:
        """The digests of ``rows``' planned values (``Differ.digests``), a piece at a time."""
        differ = Differ(self.specs, self.crm, obj)
        extra = self.extra if obj == "account" else None
        for part in chunked(rows, self.chunk):
            yield differ.digests(part, extra, self.survey_next)

    def _rows(self, obj: ObjectKind) -> tuple[list[DocRow], Callable[[DocRow], str]]:
        """The document's rows of ``obj`` sorted by id, and how to read a row's id."""
        rows: Sequence[DocRow] = self.doc.accounts if obj == "account" else self.doc.contacts
        key = ROW_ID[obj]
        return sorted(rows, key=key), key

    def _with_survey_next(self, rows: list[DocRow]) -> list[DocRow]:
        """Contacts with ``survey_next``: in the coverage plan or not (when written)."""
        planned = self.survey_next
        if planned is None:
            return rows
        return [
            replace(r, survey_next=r.contact_id in planned) if isinstance(r, ContactFigures) else r
            for r in rows
        ]

    def _mirrored(self, obj: ObjectKind) -> Sequence[Account] | Sequence[Contact]:
        index = 0 if obj == "account" else 1
        if self.mirrored is not None:
            return self.mirrored[index]
        return (
            self.store.load_accounts(self.crm) if index == 0 else self.store.load_contacts(self.crm)
        )


def _unique(rows: Sequence[DocRow], key: Callable[[DocRow], str]) -> list[DocRow]:
    """Rows sorted by id, one per id (the last: as a dict keeps it)."""
    ids = list(map(key, rows))
    last = len(rows) - 1
    return [row for i, row in enumerate(rows) if i == last or ids[i + 1] != ids[i]]


class _Mirror:
    """The mirror's values of records asked for in ascending id order, one walk over the
    records sorted by id (a repeated id: the last record, as a dict keeps it)."""

    def __init__(self, records: Sequence[Account] | Sequence[Contact]) -> None:
        self._records: list[Account | Contact] = sorted(records, key=attrgetter("id"))
        self._at = 0

    def values(self, ids: Sequence[str]) -> dict[str, Mapping[str, object]]:
        """The records' own mappings (not copies) of those of ``ids`` the mirror holds."""
        records, at, end = self._records, self._at, len(self._records)
        found: dict[str, Mapping[str, object]] = {}
        for rid in ids:
            while at < end and records[at].id < rid:
                at += 1
            while at + 1 < end and records[at + 1].id == rid:
                at += 1
            if at < end and records[at].id == rid:
                found[rid] = records[at].crm_values
        self._at = at
        return found


class FieldsNotReadyError(KnownError):
    """Mapped CRM fields are missing or unusable: write-back stays off until fixed."""

    def __init__(self, crm: str, problems: Sequence[FieldProblem]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{crm}: {len(problems)} field problem(s), write-back is off:\n{lines}")
        self.problems = list(problems)


def check_fields(crm: CrmConnector, specs: Sequence[FieldSpec]) -> None:
    """Raise ``FieldsNotReadyError`` naming every field the CRM lacks, and how to fix it."""
    problems = crm.check_fields(specs)
    for problem in problems:
        _log.error(
            "crm_field_problem",
            crm=crm.name,
            object=problem.object,
            field=problem.field,
            problem=problem.problem,
            fix=problem.fix,
        )
    if problems:
        raise FieldsNotReadyError(crm.name, problems)


def run_writeback(
    store: StateStore,
    crm: CrmConnector,
    plan: WritebackPlan | WritebackStream,
    on_object: Callable[[ObjectKind, WritebackCounts], None] | None = None,
) -> WritebackCounts:
    """Send the plan; record each confirmed batch before the next one goes out (a
    stream's next updates are planned only then). ``on_object`` is told each object's
    counts once its updates are sent.

    A CRM whose own write moves its read cursor (``CursorAfterWrite``) has the cursor
    moved past the write once the batch's confirmations are recorded (in pieces, the
    cursor in the last transaction): the confirmed values stand in for the CRM's, and
    the next sync does not read the agent's own write back. A crash between the write
    and that last commit leaves the old cursor: the next sync reads the object again.
    """
    parts: Iterable[tuple[ObjectKind, Iterable[FieldUpdate]]] = (
        plan.updates.items()
        if isinstance(plan, WritebackPlan)
        else ((obj, plan.updates(obj)) for obj in plan.objects)
    )
    total = WritebackCounts()
    for obj, updates in parts:
        counts = _write_object(store, crm, obj, updates)
        if on_object is not None:
            on_object(obj, counts)
        total.written += counts.written
        total.failed += counts.failed
        total.calls += counts.calls
        total.failures.extend(counts.failures)
    _log.info("writeback_done", crm=crm.name, written=total.written, failed=total.failed)
    return total


def _write_object(
    store: StateStore, crm: CrmConnector, obj: ObjectKind, updates: Iterable[FieldUpdate]
) -> WritebackCounts:
    def confirmed(tx: StateTx, piece: list[FieldUpdate]) -> None:
        tx.record_written(crm.name, obj, piece)
        tx.clear_failures(crm.name, obj, {u.record_id for u in piece})

    def record(batch: Sequence[FieldUpdate], outcomes: Sequence[WriteOutcome]) -> None:
        ok = {o.record_id for o in outcomes if o.ok}
        # A batch of the plain-file CRM is every record: its confirmations commit in
        # pieces, so a webhook's answer waits for one piece, and the cursor last. A crash
        # in between leaves the old cursor (the next sync reads the object again) and
        # some values unrecorded, which the next write-back writes again: what a crash
        # before one transaction's commit left, for fewer records.
        commit_in_pieces(store.transaction, [u for u in batch if u.record_id in ok], confirmed)
        with store.transaction() as tx:
            tx.record_failures(crm.name, obj, [o for o in outcomes if not o.ok])
            if isinstance(crm, CursorAfterWrite):
                moved = crm.cursor_after_write(obj, tx.get_cursor(crm.name, obj))
                if moved is not None:
                    tx.set_cursor(crm.name, obj, moved)

    return execute(crm, obj, updates, record)

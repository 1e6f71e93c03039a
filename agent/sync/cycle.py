"""One agent cycle, wired from the pure core and the ports.

sync the CRM mirror -> ingest survey responses -> compute the metrics document ->
write back changed fields. Each step is its own function so the scheduler can run
them on separate cadences; each commits its cursor together with its data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import structlog

from agent.alerts.pipeline import AlertPipeline, CycleReport
from agent.core.compute import Computed, compute_with_matches, without_gc
from agent.core.contract import FieldSpec, MetricsConfig, ObjectKind
from agent.core.document import AccountMetrics, MetricsDocument
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
from agent.state.store import StateStore
from agent.sync.coverage import wants_survey_next, with_survey_next
from agent.sync.figures import CycleFigures
from agent.sync.writeback import (
    WritebackCounts,
    crm_field,
    desired_values,
    execute,
    normalise,
    plan_updates,
)

#: Told after each page a CRM sync reads: the object, records and pages read so far, and
#: whether that object's read ended (``True`` once, also when it failed).
SyncProgress = Callable[[ObjectKind, int, int, bool], None]

__all__ = [
    "OBJECTS",
    "Computed",
    "FieldsNotReadyError",
    "SyncProgress",
    "WritebackPlan",
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
) -> dict[str, int]:
    """Bring the state's mirror of accounts and contacts up to date with the CRM.

    ``progress``, given, is told the records read after every page (the total is not
    known ahead: a CRM pages until it has no more)."""
    counts: dict[str, int] = {}
    for obj in OBJECTS:
        cursor = None if full else store.get_cursor(crm.name, obj)
        pages: Iterable[Batch[Any]] = (
            crm.read_accounts(cursor) if obj == "account" else crm.read_contacts(cursor)
        )
        seen = _Seen(obj, progress)
        try:
            changed, deleted = _apply_pages(
                store, crm.name, obj, seen.pages(pages), full_read=cursor is None
            )
        finally:
            seen.done()
        counts[f"{obj}s_changed"] = changed
        counts[f"{obj}s_deleted"] = deleted
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
) -> tuple[int, int]:
    """Store each page with its cursor; a snapshot or a full read replaces the mirror.

    A snapshot source yields no page while unchanged; one page without records is a
    snapshot of an empty CRM and still replaces the mirror.
    """
    snapshot: list[R] = []
    whole = full_read
    last_cursor: str | None = None
    changed = deleted = 0
    any_page = False
    for page in pages:
        any_page = True
        whole = whole or page.snapshot
        changed += len(page.records)
        if whole:
            snapshot.extend(page.records)
            last_cursor = page.cursor or last_cursor
            continue
        with store.transaction() as tx:
            tx.upsert_records(crm, obj, page.records)
            tx.mark_deleted(crm, obj, page.deleted_ids)
            if page.cursor is not None:
                tx.set_cursor(crm, obj, page.cursor)
        deleted += len(page.deleted_ids)
    if whole and (any_page or full_read):
        with store.transaction() as tx:
            deleted += tx.replace_all(crm, obj, snapshot)
            if last_cursor is not None:
                tx.set_cursor(crm, obj, last_cursor)
    return changed, deleted


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
    """The metrics document over the mirrored portfolio and every stored response."""
    accounts = store.load_accounts(crm)
    document, matches = compute_with_matches(
        accounts,
        store.load_contacts(crm),
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
        fields = 0
        for obj, updates in self.updates.items():
            old = self.before.get(obj, {})
            for update in updates:
                for name, value in sorted(update.values.items()):
                    was = old.get(update.record_id, {}).get(name)
                    yield f"{update.record_id} {name} {_shown(was)} → {_shown(value)}"
                    fields += 1
        yield f"{crm}: {fields} field(s) of {self.records} record(s) would be written"


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
    """Compare the figures with the CRM's values: as last read, overlaid with the writes
    the CRM confirmed after that read (so a value edited in the CRM is written again).

    ``records`` are the mirror's accounts and contacts when the caller holds them already.
    """
    plan = WritebackPlan()
    if wants_survey_next(specs):
        doc = with_survey_next(doc, store.survey_plan_ids(crm.name))
    extra = history_fields(store, crm.name, doc, specs)
    for obj in OBJECTS:
        chosen = [s for s in specs if s.object == obj]
        if not chosen:
            continue
        by_field = {crm_field(s, crm.name): s for s in chosen}
        mirrored = None if records is None else records[0 if obj == "account" else 1]
        with without_gc():  # dicts per record, thrice: acyclic, and many in a large process
            current = _current_values(store, crm.name, obj, mirrored)
            desired = desired_values(
                doc, chosen, crm.name, obj, extra if obj == "account" else None
            )
            plan.updates[obj] = plan_updates(desired, current, by_field)
            plan.before[obj] = {
                u.record_id: {
                    name: normalise(by_field[name], current.get(u.record_id, {}).get(name))
                    for name in u.values
                }
                for u in plan.updates[obj]
            }
    return plan


def _current_values(
    store: StateStore,
    crm: str,
    obj: ObjectKind,
    mirrored: Sequence[Account] | Sequence[Contact] | None = None,
) -> dict[str, Mapping[str, object]]:
    records: Sequence[Account] | Sequence[Contact]
    if mirrored is not None:
        records = mirrored
    else:
        records = store.load_accounts(crm) if obj == "account" else store.load_contacts(crm)
    # the records' own mappings, not copies (550,000 of them at scale); a record the
    # CRM confirmed a write for since the read gets a merged copy of its own
    current: dict[str, Mapping[str, object]] = {r.id: r.crm_values for r in records}
    for rid, values in store.written_since_read(crm, obj).items():
        current[rid] = {**current.get(rid, {}), **values}
    return current


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


def run_writeback(store: StateStore, crm: CrmConnector, plan: WritebackPlan) -> WritebackCounts:
    """Send the plan; record each confirmed batch before the next one goes out.

    A CRM whose own write moves its read cursor (``CursorAfterWrite``) has the cursor
    moved past the write in the same transaction: the confirmed values stand in for the
    CRM's, and the next sync does not read the agent's own write back. A crash between
    the write and the commit leaves the old cursor: the next sync reads the object again.
    """
    total = WritebackCounts()
    for obj, updates in plan.updates.items():

        def record(
            batch: Sequence[FieldUpdate], outcomes: Sequence[WriteOutcome], obj: ObjectKind = obj
        ) -> None:
            ok = {o.record_id for o in outcomes if o.ok}
            with store.transaction() as tx:
                tx.record_written(crm.name, obj, [u for u in batch if u.record_id in ok])
                tx.clear_failures(crm.name, obj, ok)
                tx.record_failures(crm.name, obj, [o for o in outcomes if not o.ok])
                if isinstance(crm, CursorAfterWrite):
                    moved = crm.cursor_after_write(obj, tx.get_cursor(crm.name, obj))
                    if moved is not None:
                        tx.set_cursor(crm.name, obj, moved)

        counts = execute(crm, obj, updates, record)
        total.written += counts.written
        total.failed += counts.failed
        total.calls += counts.calls
        total.failures.extend(counts.failures)
    _log.info("writeback_done", crm=crm.name, written=total.written, failed=total.failed)
    return total

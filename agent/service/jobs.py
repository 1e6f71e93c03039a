"""The scheduler's jobs: each one step of the cycle, returning its counts.

A job raises when it failed (the runner logs it and records it in the cycles log);
``Interrupted`` means it stopped at a checkpoint because the agent is stopping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

import structlog

from agent.alerts.deliver import DeliveryReport, deliver
from agent.alerts.pipeline import CycleReport
from agent.alerts.preview import preview_alerts
from agent.core.contract import ObjectKind
from agent.core.errors import KnownError
from agent.core.timeutil import parse_instant, utcnow
from agent.service.checkpoint import Interrupted
from agent.service.filedrop import DropFilesFailedError
from agent.service.runtime import Runtime
from agent.service.taskjob import tasks
from agent.service.telemetry import RECORDS_WRITTEN, RESPONSES_RECEIVED
from agent.state.history import record_portfolio_point, rule_history
from agent.sync.coverage import options_from, plan_from_computed, store_plan
from agent.sync.cycle import (
    OBJECTS,
    WritebackStream,
    check_fields,
    evaluate_alerts,
    ingest_surveys,
    rule_inputs,
    run_writeback,
    sync_crm,
)
from agent.sync.writeback import WritebackCounts

__all__ = ["JOBS", "DeliveryDeferredError", "Job"]

_log = structlog.get_logger(__name__)

Job = Callable[[Runtime], dict[str, int]]


class DeliveryDeferredError(KnownError):
    """Alerts stay in the outbox because the messaging vendor is unreachable.

    ``counts`` holds what the job did before (recorded in the cycles log all the same).
    """

    def __init__(self, message: str, counts: Mapping[str, int]) -> None:
        super().__init__(message)
        self.counts = dict(counts)


def crm_sync(rt: Runtime) -> dict[str, int]:
    """Starts a cycle (unless a whole pass started it), then reads the CRM's changes."""
    rt.begin_cycle()
    rt.reset_budgets()
    try:
        counts = sync_crm(
            rt.store,
            rt.crm,
            full=rt.full_sync,
            progress=rt.sync_progress,
            on_changed=rt.written_base.changed,
            specs=rt.settings.fields.specs(),
        )
    except Interrupted:  # stopping (or leadership lost) is not a failure of the CRM
        rt.written_base.forget()
        raise
    except Exception as exc:
        rt.crm_sync_failed = str(exc)
        rt.crm_changed()  # pages stored before the failure count: the figures look again
        rt.written_base.forget()
        raise
    rt.crm_sync_failed = None
    rt.full_sync = False
    # a record read again with the same fields changes nothing the figures rest on, and
    # an object none of whose records changed is not read again for them; one read back
    # with the agent's own values changes no figure, but its records are read again
    # (the write-back compares with, and rules read, the values the CRM holds)
    changed = [
        o
        for o in OBJECTS
        if counts[f"{o}s_changed"] or counts[f"{o}s_deleted"] or counts[f"{o}s_echoed"]
    ]
    if changed:
        rt.crm_changed(changed)
    keep = timedelta(days=rt.settings.schedule.keep_cycles_days)
    counts["cycles_pruned"] = rt.store.prune_cycles(utcnow() - keep)
    return counts


def survey_ingest(rt: Runtime) -> dict[str, int]:
    """The configured survey sources, then the file drop; one failing does not stop the other."""
    now = rt.cycle_at
    counts: dict[str, int] = {}
    errors: list[Exception] = []
    try:
        ingested, rt.rejected = ingest_surveys(rt.store, rt.survey_sources(now), rt.responses_added)
        counts.update(ingested)
        _count_received("sources", ingested)
    except Exception as exc:  # the file drop still runs; the error is raised below
        errors.append(exc)
    if rt.file_drop is not None:
        rt.checkpoints.check()
        try:
            counts.update(rt.file_drop.scan(now, rt.checkpoints).as_counts())
        except DropFilesFailedError as exc:  # the other files went in: count them, then fail
            counts.update(exc.counts)
            errors.append(exc)
    new = counts.get("responses_new", 0) or counts.get("drop_accepted", 0)
    if new and rt.answered is None:
        # without an answers worker (a dry run previews them), new answers reach the
        # alerts job without waiting for its cadence
        rt.trigger("alerts")
    if len(errors) > 1:
        known = all(isinstance(e, KnownError) for e in errors)
        failed = _KnownPartsFailedError if known else _PartsFailedError
        raise failed("; ".join(str(e) for e in errors), counts) from errors[0]
    if errors:
        if isinstance(errors[0], DropFilesFailedError):
            errors[0].counts = counts  # the whole job's counts go to the cycles log
        raise errors[0]
    return counts


class _PartsFailedError(RuntimeError):
    """A job part failed; ``counts`` holds what the job did all the same."""

    def __init__(self, message: str, counts: Mapping[str, int]) -> None:
        super().__init__(message)
        self.counts = dict(counts)


class _KnownPartsFailedError(_PartsFailedError, KnownError):
    """Every failed part failed with a known error: logged without a traceback."""


def _count_received(channel: str, counts: Mapping[str, int]) -> None:
    for outcome, key in (
        ("accepted", "responses_new"),
        ("repeated", "responses_repeated"),
        ("conflicting", "responses_conflicting"),
        ("rejected", "responses_rejected"),
    ):
        if counts.get(key):
            RESPONSES_RECEIVED.labels(channel=channel, outcome=outcome).inc(counts[key])


def coverage_plan(rt: Runtime) -> dict[str, int]:
    """Refresh the stored coverage plan, unless the last one is younger than the cadence.

    The plan feeds ``survey_next`` (``plan.write_back``), the rules and the digest; a
    send list that changed with every cycle would help no marketing team.
    """
    if rt.dry_run:
        return {"skipped_dry_run": 1}
    if rt.unchanged():
        return _unchanged("coverage_plan")
    now = rt.cycle_at
    every = rt.settings.schedule.coverage_plan.every
    last = rt.store.survey_plan_summary(rt.crm.name)
    if last is not None and every is not None:
        age = now - parse_instant(str(last["as_of"]))
        if age < timedelta(seconds=every):
            return {"plan_fresh": 1}
    contacts = rt.records()[1]
    plan = plan_from_computed(rt.computed(), contacts, options_from(rt.settings.plan))
    stored = store_plan(rt.store, rt.crm.name, plan)
    return {"planned_accounts": len(plan.accounts), "planned_contacts": stored}


def writeback(rt: Runtime) -> dict[str, int]:
    if rt.crm_sync_failed is not None:
        # The CRM just failed to answer (and the mirror the plan diffs against is stale):
        # do not start writing against it; the next successful sync lets write-back run.
        _log.warning(
            "writeback_skipped", reason="the CRM sync failed", crm_error=rt.crm_sync_failed
        )
        return {"skipped_crm_sync_failed": 1}
    settled = rt.settled() if rt.unchanged() else None
    if settled is not None:
        # the figures held: nothing to write; the cycle's history point, from them
        point = record_portfolio_point(
            rt.store, rt.crm.name, rt.cycle_at, settled.portfolio, rt.settings.history
        )
        return {**_unchanged("writeback"), **point}
    rt.reset_budgets()
    computed = rt.computed()
    specs = rt.settings.fields.specs()
    # only what may have moved since the last write-back that ran to its end is compared
    # (``agent.sync.written_base``); a preview or ``--full`` compares every record
    whole = rt.dry_run or rt.full_compute
    due = None if whole else rt.written_base.take()
    # planned a chunk of records at a time while it is sent: the history the plan
    # reads is read now, before this cycle's point is recorded
    # without this process's base, the stored settlement names what to compare (not in
    # a ``--full`` run), and what this write-back settles is stored (not in a preview)
    plan = WritebackStream(
        rt.store,
        rt.crm,
        computed.document,
        specs,
        rt.records(),
        due=due,
        settling=not rt.dry_run,
        consult=not whole,
    )
    if rt.dry_run:
        for line in plan.lines():
            rt.echo(line)
        return {"planned_records": plan.records}
    counts = {"planned_records": 0}
    counts.update(rt.record_history(computed))
    if not rt.fields_ready:
        check_fields(rt.crm, rt.settings.fields.specs())  # raises, naming each field and its fix
        rt.fields_ready = True
    failed: dict[ObjectKind, list[str]] = {}

    def counted(obj: ObjectKind, result: WritebackCounts) -> None:
        RECORDS_WRITTEN.labels(crm=rt.crm.name, object=obj, outcome="written").inc(result.written)
        RECORDS_WRITTEN.labels(crm=rt.crm.name, object=obj, outcome="failed").inc(result.failed)
        failed[obj] = [outcome.record_id for outcome in result.failures]

    total = run_writeback(rt.store, rt.crm, plan, counted)
    if not whole:
        rt.written_base.settle(plan.over, failed)
    plan.settle(failed)
    counts.update(
        planned_records=plan.records,
        compared_records=plan.compared,
        written=total.written,
        write_failed=total.failed,
    )
    return counts


def alerts(rt: Runtime) -> dict[str, int]:
    """Every rule over the cycle's figures. Answers that arrive between cycles (webhook,
    file drop, survey sources) are decided at once by the answers worker from their
    own accounts (``agent.service.answers``); this job decides them again with every
    other subject (alert ids are keyed: nothing is sent twice)."""
    closed = rt.settings.slack.loop_closed_field
    plan = rt.store.survey_plan_summary(rt.crm.name)
    history = rule_history(rt.store, rt.crm.name, rt.settings.history)
    if rt.dry_run:  # the real pipeline on a copy of the alert state: shown, not sent
        computed = rt.computed()
        now = computed.document.as_of
        inputs = rule_inputs(computed, closed, plan, history)
        return preview_alerts(rt.settings, rt.store.engine, inputs, now, rt.echo)
    if rt.unchanged():  # no answer arrived either (they are inputs)
        return _unchanged("alerts")
    computed = rt.computed()
    seen = rt.decision_inputs(computed, plan, history)
    if rt.decided_already("alerts", computed, seen):
        return _decided("alerts")
    now = computed.document.as_of
    report = evaluate_alerts(
        rt.pipeline,
        computed,
        closed,
        now,
        escalate=False,
        plan=plan,
        history=history,
        facts=rt.response_facts(computed),
    )
    rt.last_alerts = report.counts_only()
    counts = _alert_counts(report)
    rt.ran_over("alerts", computed, seen, quiet=_quiet(report), rules=report.rules_fingerprint)
    return counts


def escalation(rt: Runtime) -> dict[str, int]:
    if rt.dry_run:
        return {"skipped_dry_run": 1}  # the alerts job's preview showed the escalations too
    if rt.unchanged():
        return _unchanged("escalation")
    computed = rt.computed()
    history = rule_history(rt.store, rt.crm.name, rt.settings.history)
    seen = rt.decision_inputs(computed, None, history)
    if rt.decided_already("escalation", computed, seen):
        return _decided("escalation")
    closed = rt.settings.slack.loop_closed_field
    inputs = rule_inputs(computed, closed, history=history, facts=rt.response_facts(computed))
    report = rt.pipeline.escalate(inputs, computed.document.as_of)
    counts = _alert_counts(report)
    rt.ran_over("escalation", computed, seen, quiet=_quiet(report), rules=report.rules_fingerprint)
    return counts


def outbox(rt: Runtime) -> dict[str, int]:
    """The safety net on its own cadence (retries). Never waits for the delivery
    worker: while it drains a backlog at the rate limits' pace, it takes what this
    job would, and the scheduler's thread stays free for the next job (the alerts of
    a detractor that just arrived)."""
    if rt.dry_run:
        return {"skipped_dry_run": 1}
    report = deliver(rt.pipeline.repo, rt.notifier, rt.now(), wait=False)
    if report.busy:
        _log.info("job_skipped", job="outbox", reason="delivery in progress")
        return {"delivery_busy": 1}
    return _delivery_counts(report)


def _unchanged(job: str) -> dict[str, int]:
    """A job of a settled cycle: its inputs and the clock are where its last run left
    them, so it would do nothing (``agent.sync.settled``)."""
    _log.info("job_skipped", job=job, reason="unchanged")
    return {"unchanged": 1}


def _decided(job: str) -> dict[str, int]:
    """A deciding job whose last run had the same inputs and wrote nothing
    (``Runtime.decided_already``): it would decide the same again."""
    _log.info("job_skipped", job=job, reason="decided over the same inputs")
    return {"unchanged": 1}


def _quiet(report: CycleReport) -> bool:
    """A run whose repeat over the same inputs would do nothing more: it recorded
    nothing, its rules loaded and every rule evaluated (an error is reported again),
    nothing was left for the vendor."""
    delivery = report.delivery
    return (
        report.recorded == 0
        and report.rules_error is None
        and not report.evaluation_errors
        and (delivery is None or (delivery.deferred == 0 and delivery.failed == 0))
    )


def _alert_counts(report: CycleReport) -> dict[str, int]:
    counts = {
        "rules": report.rules,
        "matches": report.matches,
        "alerts_recorded": report.recorded,
        "rules_invalid": int(report.rules_error is not None),
    }
    if report.delivery is not None:
        return _delivery_counts(report.delivery, counts)
    return counts


def _delivery_counts(
    report: DeliveryReport, before: Mapping[str, int] | None = None
) -> dict[str, int]:
    counts = {
        **(before or {}),
        "alerts_sent": report.sent,
        "alerts_recovered": report.recovered,
        "alerts_updated": report.updated,
        "alerts_failed": report.failed,
        "alerts_suppressed": report.skipped,
        "alerts_deferred": report.deferred,
    }
    if report.error is not None:
        raise DeliveryDeferredError(
            f"{report.deferred} alert(s) stay in the outbox and are retried: {report.error}",
            counts,
        )
    return counts


#: Every job by name, in dependency order (``run --once`` runs them in this order).
JOBS: dict[str, Job] = {
    "crm_sync": crm_sync,
    "survey_ingest": survey_ingest,
    "tasks": tasks,
    "coverage_plan": coverage_plan,
    "writeback": writeback,
    "alerts": alerts,
    "escalation": escalation,
    "outbox": outbox,
}

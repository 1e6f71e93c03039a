"""CRM tasks both ways: plan -> record -> create; read completions back; push closures.

The stages mirror the alert pipeline's. Planning is pure (``agent.tasks.plan``);
recording writes the task outbox; creation sends what is pending in batches and marks
a task ``open`` only once the CRM confirmed it (after a crash, a task that may be in
the CRM is looked up by its alert key first, so none is created twice). Reading back
closes the loop of a task completed in the CRM: the response's ``loop_closed_at``,
the alert state (no escalation) and the Slack message (``chat.update`` through the
alert outbox). A loop closed elsewhere (Slack, the survey, a CRM field) completes
its task in the CRM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection

from agent.alerts.pipeline import close_loop
from agent.alerts.repo import AlertRepo
from agent.core.batching import chunked
from agent.core.document import TaskFigures
from agent.core.ports import TaskCrm, TaskSpec
from agent.rules.evaluate import evaluate, response_subject
from agent.rules.facts import RuleInputs
from agent.rules.loader import CompiledRule
from agent.state.store import StateStore
from agent.tasks.plan import PlannedTask, plan_tasks, task_rules
from agent.tasks.repo import TaskRepo, TaskRow
from connectors.common.errors import RetriableError

__all__ = ["CLOSED_BY_CRM", "TaskReport", "TaskSync", "TasksNotReadyError"]

_log = structlog.get_logger(__name__)
CLOSED_BY_CRM = "CRM task"
_STREAM = "tasks"

#: Called with what is about to be done (a create or completion batch) right before
#: it goes to the CRM: where the leader's fencing claim is made (raise to refuse it).
Claim = Callable[[str], None]


class TasksNotReadyError(Exception):
    """The CRM cannot take the agent's tasks yet (a missing field, no access): how to fix it."""

    def __init__(self, crm: str, problems: Sequence[str]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{crm}: {len(problems)} task problem(s), tasks stay pending:\n{lines}")
        self.problems = list(problems)


@dataclass(slots=True)
class TaskReport:
    planned: int = 0
    recorded: int = 0
    created: int = 0
    recovered: int = 0
    failed: int = 0
    completed_in_crm: int = 0
    loops_closed: int = 0
    pushed: int = 0
    calls: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    #: Alerts whose loop a CRM task closed (their messages are updated in place).
    closed_alerts: list[str] = field(default_factory=list)

    #: The task figures after ``run`` (the document's ``tasks`` section, as of its time).
    figures: TaskFigures | None = None

    def as_counts(self) -> dict[str, int]:
        return {
            "tasks_planned": self.planned,
            "tasks_recorded": self.recorded,
            "tasks_created": self.created,
            "tasks_recovered": self.recovered,
            "tasks_failed": self.failed,
            "tasks_completed_in_crm": self.completed_in_crm,
            "loops_closed_by_tasks": self.loops_closed,
            "tasks_completed_in_crm_by_agent": self.pushed,
        }


class TaskSync:
    """One CRM's task list, kept in step with the task outbox."""

    def __init__(
        self,
        store: StateStore,
        crm: TaskCrm,
        *,
        loop_sla: timedelta = timedelta(hours=48),
        fallback_owner: str | None = None,
        batch_size: int = 1000,
        claim: Claim | None = None,
    ) -> None:
        self.store = store
        self.crm = crm
        self.repo = TaskRepo(store.engine, crm.name)
        self.alerts = AlertRepo(store.engine, store.fence)
        self.loop_sla = loop_sla
        self.fallback_owner = fallback_owner
        self.batch = max(1, min(batch_size, crm.max_task_batch))
        self.claim = claim or (lambda _what: None)
        self._owners: dict[str, str | None] = {}
        self._ready = False

    # -- planning ------------------------------------------------------------------

    def plan(
        self, rules: Sequence[CompiledRule], inputs: RuleInputs, now: datetime
    ) -> list[PlannedTask]:
        """The tasks this cycle's figures call for that are not recorded yet."""
        chosen = task_rules(rules)
        if not chosen:
            return []
        matches = evaluate(chosen, inputs).matches
        candidates = [f"{m.rule.id}:{m.subject}" for m in matches]
        return plan_tasks(
            matches,
            known=self.repo.known(candidates),
            recent=self.repo.recent(r.id for r in chosen if r.task and r.task.action.every),
            now=now,
            default_due=self.loop_sla,
            fallback_owner=self.fallback_owner,
        )

    def horizon(self, rules: Sequence[CompiledRule], as_of: datetime) -> datetime | None:
        """The first instant after ``as_of`` at which a task rule's period (``every``) for
        an account ends: a match then makes a new task with the same inputs. None: never.
        (A period ended already made its task, or has no match to make one from.)"""
        every = {
            r.id: r.task.action.every
            for r in task_rules(rules)
            if r.task is not None and r.task.action.every is not None
        }
        ends = [last + every[rule] for (rule, _), last in self.repo.recent(every).items()]
        ahead = [end for end in ends if end > as_of]
        return min(ahead) if ahead else None

    def run(self, rules: Sequence[CompiledRule], inputs: RuleInputs, now: datetime) -> TaskReport:
        """Plan, record and create; then complete in the CRM the loops closed here."""
        report = TaskReport()
        planned = self.plan(rules, inputs, now)
        report.planned = len(planned)
        report.recorded = self.repo.record(planned)
        self.create_pending(now, report)
        self.push_closures(inputs, now, report)
        report.figures = figures = self.figures(now)
        _log.info(
            "tasks_cycle",
            crm=self.crm.name,
            detractor_tasks=figures.detractor_tasks,
            detractor_tasks_completed=figures.detractor_tasks_completed,
            detractor_tasks_completed_in_sla=figures.detractor_tasks_closed_in_sla,
            tasks_open=figures.open,
            tasks_overdue=figures.overdue,
            **report.as_counts(),
        )
        return report

    def figures(self, as_of: datetime) -> TaskFigures:
        """This CRM's task figures as of ``as_of`` (the document's ``tasks`` section)."""
        return self.repo.figures(as_of, self.loop_sla)

    # -- creating ------------------------------------------------------------------

    def create_pending(self, now: datetime, report: TaskReport) -> None:
        """Send what is pending, in batches; a vendor outage leaves the rest for later."""
        for batch in chunked(self.repo.rows("pending"), self.batch):
            try:
                self._create(batch, now, report)
            except RetriableError as exc:
                self.repo.mark_error({t.key: str(exc) for t in batch})
                report.errors["create"] = str(exc)
                _log.warning("tasks_create_deferred", crm=self.crm.name, error=str(exc))
                return

    def _check(self) -> None:
        """Once per sync: the CRM can take tasks (else raise naming each fix)."""
        if self._ready:
            return
        problems = self.crm.check_tasks()
        if problems:
            raise TasksNotReadyError(self.crm.name, problems)
        self._ready = True

    def _create(self, batch: Sequence[TaskRow], now: datetime, report: TaskReport) -> None:
        self._check()
        maybe_sent = [t.key for t in batch if t.attempts > 0]
        found = dict(self.crm.find_tasks(maybe_sent)) if maybe_sent else {}
        if found:
            self.repo.mark_created(found, now)
            report.recovered += len(found)
            _log.info("tasks_found_already_created", keys=sorted(found))
        todo = [t for t in batch if t.key not in found]
        if not todo:
            return
        specs = self.specs(todo)
        self.claim(f"a batch of {len(specs)} task(s) created in {self.crm.name}")
        self.repo.mark_attempt(
            [s.key for s in specs], {s.key: (s.owner_email, s.owner_id) for s in specs}
        )
        outcomes = self.crm.create_tasks(specs)
        created = {o.key: o.task_id or "" for o in outcomes if o.ok}
        failed = {o.key: f"{o.error_code}: {o.message}" for o in outcomes if not o.ok}
        self.repo.mark_created(created, now)
        self.repo.mark_error(failed)
        report.created += len(created)
        report.failed += len(failed)
        for key, error in failed.items():
            _log.warning("task_create_failed", crm=self.crm.name, key=key, error=error)

    def specs(self, tasks: Sequence[TaskRow]) -> list[TaskSpec]:
        """The tasks as the CRM gets them: owners resolved by e-mail, the fallback applied."""
        self._resolve({e for t in tasks for e in (t.owner_email, t.fallback_email) if e})
        return [self._spec(t) for t in tasks]

    def _resolve(self, emails: set[str]) -> None:
        """Owner ids by e-mail, asked once per e-mail for the sync's life (cached)."""
        missing = sorted(emails - set(self._owners))
        if missing:
            self._owners.update(self.crm.resolve_owners(missing))

    def _spec(self, task: TaskRow) -> TaskSpec:
        owner_email, owner_id = task.owner_email, self._owners.get(task.owner_email or "")
        if owner_id is None:
            fallback = task.fallback_email
            owner_email = fallback
            owner_id = self._owners.get(fallback or "")
            if owner_id is None:
                owner_email = None
        return TaskSpec(
            key=task.key,
            account_id=task.account_id,
            contact_id=task.contact_id,
            owner_id=owner_id,
            owner_email=owner_email,
            subject=task.title,
            body=task.body,
            due_at=task.due_at,
            priority=task.priority,
        )

    # -- reading back --------------------------------------------------------------

    def read_back(self, now: datetime) -> TaskReport:
        """Close the loops of tasks completed in the CRM since the last read.

        Each completion is one transaction: the task, the response's loop, its alert
        states and the queued message updates commit together or not at all. On the
        running agent each is held against the leader's epoch (as cursor commits and
        write records are): a superseded leader's read-back raises ``FencedError`` and
        commits nothing; the cursor, fenced too, moves only after every completion.
        """
        report = TaskReport()
        self._check()
        cursor = self.store.get_cursor(self.crm.name, _STREAM)
        changes = self.crm.task_changes(cursor)
        done = [c for c in changes.changes if c.completed]
        rows = self.repo.by_task_ids(c.task_id for c in done)
        for change in done:
            row = rows.get(change.task_id)
            if row is None or row.status == "completed":
                continue
            when = change.completed_at or now
            with self.store.engine.begin() as conn:
                self._hold(conn, f"the read-back of task {row.key}")
                self.repo.completed_in_crm(conn, row.key, when)
                closed = self._close_alerts(conn, row, when)
            report.completed_in_crm += 1
            report.closed_alerts.extend(closed)
            report.loops_closed += 1 if row.response_id else 0
            _log.info(
                "task_loop_closed", key=row.key, subject=row.subject, alerts_updated=len(closed)
            )
        if changes.cursor is not None:
            self.store.set_cursor(self.crm.name, _STREAM, changes.cursor)
        _log.info("tasks_read_back", crm=self.crm.name, **report.as_counts())
        return report

    def _hold(self, conn: Connection, what: str) -> None:
        """Inside ``conn``'s transaction: only the current leader commits (when fenced)."""
        fence = self.store.fence
        if fence is not None:
            fence.hold(conn, what)

    def _close_alerts(self, conn: Connection, row: TaskRow, when: datetime) -> list[str]:
        """Close the subject's open alert states; queue the in-place message updates."""
        closed: list[str] = []
        for _rule_id, alert_id in self.repo.open_states(conn, row.subject):
            if alert_id is None:
                continue
            sla = self.loop_sla
            if close_loop(self.alerts, alert_id, CLOSED_BY_CRM, when, sla, conn=conn) is not None:
                closed.append(alert_id)
        return closed

    # -- closed here, completed there ----------------------------------------------

    def push_closures(self, inputs: RuleInputs, now: datetime, report: TaskReport) -> None:
        """Complete in the CRM the tasks whose loop closed in Slack, the survey or a field."""
        open_tasks = [t for t in self.repo.rows("open") if t.response_id is not None]
        if open_tasks:
            closed = self.repo.closed_elsewhere({t.subject for t in open_tasks})
            closed.update(_survey_closures(inputs, {t.subject for t in open_tasks}, closed))
            self.repo.request_completion(
                {t.key: closed[t.subject] for t in open_tasks if t.subject in closed}
            )
        for batch in chunked(self.repo.to_push(), self.batch):
            items = [(t.key, t.crm_task_id or "", t.loop_closed_at or now) for t in batch]
            self.claim(f"a batch of {len(items)} task(s) completed in {self.crm.name}")
            try:
                outcomes = self.crm.complete_tasks(items)
            except RetriableError as exc:
                report.errors["complete"] = str(exc)
                return
            self.repo.mark_completed(o.key for o in outcomes if o.ok)
            failed = {o.key: f"{o.error_code}: {o.message}" for o in outcomes if not o.ok}
            self.repo.mark_error(failed)
            report.pushed += sum(1 for o in outcomes if o.ok)


def _survey_closures(
    inputs: RuleInputs, subjects: set[str], known: dict[str, tuple[datetime, str]]
) -> dict[str, tuple[datetime, str]]:
    out: dict[str, tuple[datetime, str]] = {}
    for facts in inputs.responses:
        closed = facts.closed_at
        if closed is None:
            continue
        subject = response_subject(facts)
        if subject in subjects and subject not in known:
            out[subject] = (closed, "survey or CRM")
    return out

"""The CRM task figures: what became of the tasks the rules put on owners' task lists.

Not a figure of the metric contract: the running agent adds them to its document as
the ``tasks`` section (``MetricsDocument.tasks``) beside the contract's keys, which
keep their definitions. Every count is as of ``as_of``: a task recorded later is not
there yet, one completed later is still open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.core.document import TaskFigures

__all__ = ["TaskRecord", "completed_at", "task_figures"]


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """What the figures need of one task of the task outbox."""

    created_at: datetime
    #: When the CRM confirmed it (None while pending).
    sent_at: datetime | None
    due_at: datetime
    #: ``pending``, ``open`` or ``completed``.
    status: str
    #: When the owner completed it in the CRM (read back).
    crm_completed_at: datetime | None
    #: When its loop closed elsewhere (Slack, the survey, a CRM field).
    loop_closed_at: datetime | None
    #: The answer's time when the task is a detractor's callback (score 0-6), else None.
    detractor_submitted_at: datetime | None = None


def completed_at(task: TaskRecord) -> datetime | None:
    """When a completed task's loop closed: the first of both sides' times."""
    times = [t for t in (task.crm_completed_at, task.loop_closed_at) if t is not None]
    return min(times) if times else None


def _completed_by(task: TaskRecord, as_of: datetime) -> tuple[bool, datetime | None]:
    """(completed as of ``as_of``, when); a completion without a known time counts."""
    if task.status != "completed":
        return False, None
    when = completed_at(task)
    return when is None or when <= as_of, when


def task_figures(
    crm: str, tasks: Iterable[TaskRecord], as_of: datetime, loop_sla: timedelta
) -> TaskFigures:
    """The ``tasks`` section of the document, from one CRM's task outbox."""
    n: dict[str, int] = dict.fromkeys(
        (
            "recorded",
            "pending",
            "created",
            "open",
            "overdue",
            "completed",
            "completed_in_time",
            "completed_in_crm",
            "detractor_tasks",
            "detractor_tasks_completed",
            "detractor_tasks_closed_in_sla",
        ),
        0,
    )
    for task in tasks:
        if task.created_at > as_of:
            continue
        n["recorded"] += 1
        done, when = _completed_by(task, as_of)
        submitted = task.detractor_submitted_at
        if submitted is not None:
            n["detractor_tasks"] += 1
            if done:
                n["detractor_tasks_completed"] += 1
                if when is not None and when - submitted <= loop_sla:
                    n["detractor_tasks_closed_in_sla"] += 1
        if task.sent_at is None or task.sent_at > as_of:
            n["pending"] += 1
            continue
        n["created"] += 1
        if done:
            n["completed"] += 1
            n["completed_in_time"] += when is not None and when <= task.due_at
            crm_done = task.crm_completed_at
            n["completed_in_crm"] += crm_done is not None and crm_done <= as_of
        else:
            n["open"] += 1
            n["overdue"] += task.due_at < as_of
    detractors, in_sla = n["detractor_tasks"], n["detractor_tasks_closed_in_sla"]
    rate = in_sla / detractors if detractors else None
    return TaskFigures(crm=crm, **n, closed_loop_rate=rate)

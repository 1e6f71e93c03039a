"""The scheduler's ``tasks`` job: CRM tasks both ways, on their own cadence.

Read back first (a task completed in the CRM closes its loop before anything is
computed), then plan, record and create the tasks the rules call for, and complete
in the CRM the tasks whose loop closed in Slack, the survey or a CRM field.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from agent.core.errors import KnownError
from agent.service.runtime import Runtime
from agent.sync.cycle import rule_inputs
from agent.tasks.plan import plan_lines

__all__ = ["TasksDeferredError", "tasks"]

_log = structlog.get_logger(__name__)


class TasksDeferredError(KnownError):
    """Tasks stay in the task outbox because the CRM is unreachable; retried next run."""

    def __init__(self, message: str, counts: Mapping[str, int]) -> None:
        super().__init__(message)
        self.counts = dict(counts)


def tasks(rt: Runtime) -> dict[str, int]:
    sync = rt.tasks
    if sync is None:
        return {"tasks_off": 1}
    now = rt.cycle_at
    rules = rt.pipeline.registry.refresh().rules.enabled()
    if rt.dry_run:
        inputs = rule_inputs(rt.computed(), rt.settings.slack.loop_closed_field)
        planned = sync.plan(rules, inputs, now)
        for line in plan_lines(planned, sync.crm.name):
            rt.echo(line)
        return {"tasks_planned": len(planned)}
    try:
        closed = sync.read_back(now)
    finally:
        rt.tasks_changed()
    if closed.completed_in_crm:
        rt.data_changed()
        rt.trigger("outbox")  # the closed alerts' messages are updated in place
    if rt.unchanged():  # nothing read back, nothing to plan: the cycle's figures held
        _log.info("job_skipped", job="tasks", reason="unchanged")
        return {"unchanged": 1}
    inputs = rule_inputs(rt.computed(), rt.settings.slack.loop_closed_field)
    try:
        report = sync.run(rules, inputs, now)
    finally:
        rt.tasks_changed()  # created, completed or failed: the task figures are read again
    rt.last_tasks = (closed, report)
    figures = report.figures
    counts = {
        **report.as_counts(),
        "detractor_tasks": figures.detractor_tasks if figures else 0,
        "detractor_tasks_completed_in_sla": figures.detractor_tasks_closed_in_sla if figures else 0,
        "tasks_open": figures.open if figures else 0,
        "tasks_overdue": figures.overdue if figures else 0,
        "tasks_completed_in_crm": closed.completed_in_crm,
        "loops_closed_by_tasks": closed.loops_closed,
    }
    if report.errors:
        raise TasksDeferredError(
            "tasks stay in the task outbox and are retried: "
            + "; ".join(f"{k}: {v}" for k, v in report.errors.items()),
            counts,
        )
    return counts

"""Whether a whole cycle's own writes leave a rerun at the same instant nothing to do.

A cycle that wrote may still settle at its end (``agent.sync.settled``) when every
write after it decided was the idempotent record of its own decisions: the figures
the CRM confirmed, the alerts and tasks recorded and delivered, the history, the
coverage plan. Rerun over the state those writes left, the same cycle finds every
figure written, every alert and task recorded and sent, the plan fresh: it writes
nothing. An outcome that a rerun would act on again keeps the cycle from settling;
the next cycle then runs in full and confirms (and settles if it changed nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["rerun_would_act"]

#: Counts (of any job) that a rerun acts on again, and why.
_RETRIED = {
    "write_failed": "refused CRM writes are retried",
    "alerts_failed": "alerts the messaging vendor refused",
    "alerts_deferred": "alerts wait in the outbox for the messaging vendor",
    "delivery_busy": "alerts are being delivered",
    "tasks_failed": "tasks the CRM refused are retried",
    "rules_invalid": "the rule files did not load (the last good rules ran)",
}


def rerun_would_act(
    counts: Mapping[str, Mapping[str, int]], *, plan_every: float | None
) -> str | None:
    """Why running this cycle again at the same instant could write or send again
    (None: it would not). ``counts``: each job's counts; ``plan_every``: the coverage
    plan's cadence (None: a new plan every cycle)."""
    for job_counts in counts.values():
        for key, why in _RETRIED.items():
            if job_counts.get(key):
                return why
    if plan_every is None and "planned_accounts" in counts.get("coverage_plan", {}):
        return "the coverage plan is made again every cycle"
    return None

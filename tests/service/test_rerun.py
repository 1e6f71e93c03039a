"""Which outcomes of a whole cycle a rerun at the same instant would act on again."""

from __future__ import annotations

import pytest

from agent.service.rerun import rerun_would_act

#: A cycle whose every write confirms its own decisions.
_CONFIRMED = {
    "tasks": {"tasks_created": 3, "tasks_recorded": 3, "tasks_failed": 0},
    "coverage_plan": {"planned_accounts": 2, "planned_contacts": 5},
    "writeback": {"written": 24, "write_failed": 0, "history_accounts": 6},
    "alerts": {"alerts_recorded": 11, "alerts_sent": 11, "alerts_failed": 0, "rules_invalid": 0},
    "escalation": {"alerts_recorded": 3, "alerts_sent": 3},
    "outbox": {"alerts_sent": 0, "alerts_deferred": 0},
}


def test_confirmations_of_the_cycles_own_decisions_leave_a_rerun_nothing() -> None:
    assert rerun_would_act(_CONFIRMED, plan_every=6 * 3600) is None


@pytest.mark.parametrize(
    ("job", "key"),
    [
        ("writeback", "write_failed"),
        ("alerts", "alerts_failed"),
        ("escalation", "alerts_deferred"),
        ("outbox", "delivery_busy"),
        ("tasks", "tasks_failed"),
        ("alerts", "rules_invalid"),
    ],
)
def test_an_outcome_that_is_retried_is_acted_on_again(job: str, key: str) -> None:
    counts = {**_CONFIRMED, job: {**_CONFIRMED[job], key: 1}}
    assert rerun_would_act(counts, plan_every=6 * 3600) is not None


def test_a_plan_made_every_run_is_made_again() -> None:
    assert rerun_would_act(_CONFIRMED, plan_every=None) is not None
    fresh = {**_CONFIRMED, "coverage_plan": {"plan_fresh": 1}}
    assert rerun_would_act(fresh, plan_every=None) is None

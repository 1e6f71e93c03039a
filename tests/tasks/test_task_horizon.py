"""A task rule's period (``every``) ends at an instant the settled cycle must not pass."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from agent.rules.loader import load_rules
from agent.state.store import StateStore
from agent.tasks.sync import TaskSync
from tests.tasks.planned import NOW, planned

RULES = Path(__file__).resolve().parents[2] / "rules"
CHANNELS = {"cx-alerts", "cx-leadership", "account-management"}


class _NoCrm:
    max_task_batch = 1000

    def __init__(self, name: str) -> None:
        self.name = name


def test_the_next_task_period_end_is_the_horizon(store: StateStore) -> None:
    rules = load_rules(RULES, channels=CHANNELS, routes={}).enabled()
    sync = TaskSync(store, _NoCrm("salesforce"))  # type: ignore[arg-type]
    assert sync.horizon(rules, NOW) is None  # no task yet
    first, second, callback = planned(3)
    sync.repo.record(
        [
            replace(first, key="promoter-activation:A:1", rule_id="promoter-activation"),
            replace(
                second,
                key="promoter-activation:B:1",
                rule_id="promoter-activation",
                account_id="B",
                created_at=NOW - timedelta(days=10),
            ),
            callback,  # a detractor callback: no period
        ]
    )
    assert sync.horizon(rules, NOW) == NOW + timedelta(days=80)
    assert sync.horizon(rules, NOW + timedelta(days=85)) == NOW + timedelta(days=90)
    assert sync.horizon(rules, NOW + timedelta(days=90)) is None

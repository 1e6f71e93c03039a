"""The contract every CRM's task list passes (``agent.core.ports.TaskCrm``), through the
agent's own task sync (``agent.tasks.sync.TaskSync``) and a real state store.

What the contract means, for a CRM that holds tasks (Salesforce, HubSpot):

- tasks are created in batches: ``n`` tasks cost ``⌈n/per_call⌉`` counted create calls,
  each task attached to its account and contact and owned by the account owner's CRM
  user, found by e-mail with the users asked once per sync;
- an owner the CRM does not know, or an inactive one, gives the task to the fallback
  owner; without a fallback the CRM's default applies (no owner is sent);
- a task the CRM refuses fails alone: the others of its batch are created, its error is
  kept on its row, and it is created at a later run once the cause is fixed;
- a task whose create may have reached the CRM (a crash after the call, before the
  record) is looked up by its alert key and never created twice;
- a task completed in the CRM is read back and closes its answer's loop, once; a loop
  closed in the agent completes the task in the CRM.

A harness seeds its fake CRM with one account, one of its contacts, three users
(``owner1@vendor.example`` and ``cx-lead@vendor.example`` active,
``gone@vendor.example`` inactive) and the provisioned alert-key field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import pytest

from agent.core.ports import TaskCrm
from agent.rules.facts import build_inputs
from agent.state.store import StateStore
from agent.tasks.plan import PlannedTask
from agent.tasks.sync import TaskReport, TaskSync
from tests.alerting.factories import document
from tests.tasks.planned import NOW, loop_closed_at, planned, store_responses

__all__ = ["FALLBACK", "INACTIVE", "OWNER", "StoredTask", "TaskContract", "TaskHarness"]

OWNER = "owner1@vendor.example"
FALLBACK = "cx-lead@vendor.example"
INACTIVE = "gone@vendor.example"


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task as the CRM holds it, in the contract's terms."""

    task_id: str
    account_id: str | None
    contact_id: str | None
    owner_id: str | None
    subject: str | None
    completed: bool


class TaskHarness(Protocol):
    """What a CRM's task contract test supplies as the ``task_harness`` fixture."""

    name: str
    #: Tasks one counted create call takes: ``n`` tasks cost ``⌈n/per_call⌉`` calls.
    per_call: int
    #: The seeded account (company) and contact ids.
    account: str
    contact: str
    #: E-mail -> CRM user id of the active users (``OWNER``, ``FALLBACK``).
    users: Mapping[str, str]

    def task_crm(self) -> TaskCrm:
        """A new connector's task list."""
        ...

    def create_calls(self) -> int:
        """Counted create calls so far."""
        ...

    def owner_lookups(self) -> int:
        """Calls that asked the CRM for its users so far."""
        ...

    def stored(self) -> dict[str, StoredTask]:
        """The CRM's tasks by alert key."""
        ...

    def complete(self, task_id: str) -> None:
        """The owner marks the task completed in the CRM, later than anything before."""
        ...

    def refused(self, task: PlannedTask) -> PlannedTask:
        """``task`` changed so that this CRM refuses it, record by record."""
        ...

    def accept_refused(self) -> None:
        """Fix what made the CRM refuse the task of ``refused``."""
        ...


class TaskContract:
    """Subclass in a ``Test…`` class and supply the ``task_harness`` fixture."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> StateStore:
        return StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")

    def sync(self, store: StateStore, harness: TaskHarness) -> TaskSync:
        return TaskSync(store, harness.task_crm(), fallback_owner=FALLBACK)

    def planned(self, harness: TaskHarness, n: int, **changes: object) -> list[PlannedTask]:
        values: dict[str, object] = {"account": harness.account, "contact": harness.contact}
        values.update(changes)
        return planned(n, **values)  # type: ignore[arg-type]

    @staticmethod
    def create(sync: TaskSync) -> TaskReport:
        report = TaskReport()
        sync.create_pending(NOW, report)
        return report

    def test_tasks_are_created_in_counted_batches_owned_and_attached(
        self, task_harness: TaskHarness, store: StateStore
    ) -> None:
        n = task_harness.per_call + 1
        sync = self.sync(store, task_harness)
        sync.repo.record(self.planned(task_harness, n))

        report = self.create(sync)

        assert (report.created, report.failed) == (n, 0)
        assert task_harness.create_calls() == 2  # ⌈n/per_call⌉
        assert task_harness.owner_lookups() == 1  # the users are asked once
        stored = task_harness.stored()
        assert len(stored) == n
        first = stored["new-detractor:survey/R0"]
        assert first.account_id == task_harness.account
        assert first.contact_id == task_harness.contact
        assert first.owner_id == task_harness.users[OWNER]
        assert first.subject == "Call back contact 0 (score 3, Support) within 48 h"
        assert not first.completed
        row = sync.repo.get("new-detractor:survey/R0")
        assert row is not None
        assert (row.status, row.crm_task_id, row.owner_id) == (
            "open",
            first.task_id,
            first.owner_id,
        )

    def test_an_unknown_or_inactive_owner_gets_the_fallback_and_none_without_one(
        self, task_harness: TaskHarness, store: StateStore
    ) -> None:
        sync = self.sync(store, task_harness)
        sync.repo.record(
            [
                *self.planned(task_harness, 1, owner=INACTIVE, prefix="inactive"),
                *self.planned(task_harness, 1, owner="nobody@vendor.example", prefix="unknown"),
                *self.planned(task_harness, 1, owner=None, prefix="none"),
                *self.planned(
                    task_harness, 1, owner="nobody@vendor.example", fallback=None, prefix="alone"
                ),
                *self.planned(task_harness, 1, prefix="found"),
            ]
        )

        assert self.create(sync).created == 5

        owners = {k.rsplit("/", 1)[1]: t.owner_id for k, t in task_harness.stored().items()}
        lead, owner = task_harness.users[FALLBACK], task_harness.users[OWNER]
        assert owners == {
            "inactive0": lead,
            "unknown0": lead,
            "none0": lead,
            "alone0": None,
            "found0": owner,
        }
        row = sync.repo.get("new-detractor:survey/inactive0")
        assert row is not None
        assert (row.owner_email, row.owner_id) == (FALLBACK, lead)

    def test_a_refused_task_fails_alone_keeps_its_error_and_is_created_later(
        self, task_harness: TaskHarness, store: StateStore
    ) -> None:
        sync = self.sync(store, task_harness)
        good = self.planned(task_harness, 3)
        bad = task_harness.refused(self.planned(task_harness, 1, prefix="bad")[0])
        sync.repo.record([good[0], bad, *good[1:]])  # in the middle of one batch

        report = self.create(sync)

        assert (report.created, report.failed) == (3, 1)
        row = sync.repo.get(bad.key)
        assert row is not None
        assert row.status == "pending"
        assert row.last_error  # the CRM's code and message, kept
        assert set(task_harness.stored()) == {t.key for t in good}

        task_harness.accept_refused()
        retry = self.create(self.sync(store, task_harness))

        assert (retry.created, retry.recovered, retry.failed) == (1, 0, 0)
        assert set(task_harness.stored()) == {t.key for t in [*good, bad]}
        fixed = sync.repo.get(bad.key)
        assert fixed is not None
        assert (fixed.status, fixed.last_error) == ("open", None)

    def test_a_task_created_before_a_crash_is_found_by_its_key_not_created_twice(
        self, task_harness: TaskHarness, store: StateStore
    ) -> None:
        sync = self.sync(store, task_harness)
        tasks = self.planned(task_harness, 2)
        sync.repo.record(tasks)
        # The agent recorded the attempt, the CRM created the batch, the agent died.
        sync.repo.mark_attempt([t.key for t in tasks], {})
        task_harness.task_crm().create_tasks(sync.specs(sync.repo.rows("pending")))
        creates = task_harness.create_calls()

        report = self.create(self.sync(store, task_harness))

        assert (report.recovered, report.created) == (2, 0)
        assert task_harness.create_calls() == creates
        stored = task_harness.stored()
        assert len(stored) == 2
        row = sync.repo.get(tasks[0].key)
        assert row is not None
        assert (row.status, row.crm_task_id) == ("open", stored[tasks[0].key].task_id)

    def test_a_task_completed_in_the_crm_closes_its_loop_once(
        self, task_harness: TaskHarness, store: StateStore
    ) -> None:
        sync = self.sync(store, task_harness)
        store_responses(store, ["R0", "R1"])
        tasks = self.planned(task_harness, 2)
        sync.repo.record(tasks)
        self.create(sync)
        assert sync.read_back(NOW).completed_in_crm == 0

        task_harness.complete(task_harness.stored()[tasks[1].key].task_id)
        report = sync.read_back(NOW + timedelta(hours=2))

        assert (report.completed_in_crm, report.loops_closed) == (1, 1)
        assert loop_closed_at(store, "R1") is not None
        assert loop_closed_at(store, "R0") is None
        row = sync.repo.get(tasks[1].key)
        assert row is not None
        assert row.status == "completed"
        assert row.crm_completed_at is not None
        again = self.sync(store, task_harness).read_back(NOW + timedelta(hours=3))
        assert again.completed_in_crm == 0  # read once: nothing closes twice

    def test_a_loop_closed_in_the_agent_completes_the_crm_task(
        self, task_harness: TaskHarness, store: StateStore
    ) -> None:
        sync = self.sync(store, task_harness)
        tasks = self.planned(task_harness, 2)
        sync.repo.record(tasks)
        self.create(sync)
        sync.repo.request_completion({tasks[0].key: (NOW + timedelta(hours=1), "U42")})

        report = TaskReport()
        sync.push_closures(build_inputs(document([]), []), NOW, report)

        assert report.pushed == 1
        stored = task_harness.stored()
        assert stored[tasks[0].key].completed
        assert not stored[tasks[1].key].completed
        row = sync.repo.get(tasks[0].key)
        assert row is not None
        assert row.status == "completed"

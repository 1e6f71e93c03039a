"""Salesforce ``Task`` records: creation in counted batches, owners, read-back, crashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote_plus as unquote

import pytest
import responses

from agent.core.contract import default_field_specs
from agent.rules.facts import build_inputs
from agent.state.store import StateStore
from agent.tasks.sync import TaskReport, TasksNotReadyError, TaskSync
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.provision import PERMISSION_SET, TASK_KEY, provision
from tests.alerting.factories import document
from tests.salesforce.fake import FakeSalesforce, add_task_key
from tests.salesforce.fake.org import close_task
from tests.tasks.planned import NOW, loop_closed_at, planned, store_responses


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def users(fake: FakeSalesforce) -> dict[str, str]:
    add_task_key(fake)
    return {
        "owner1@vendor.example": fake.org.insert(
            "User", {"Email": "Owner1@Vendor.example", "IsActive": True}
        ),
        "gone@vendor.example": fake.org.insert(
            "User", {"Email": "gone@vendor.example", "IsActive": False}
        ),
        "cx-lead@vendor.example": fake.org.insert(
            "User", {"Email": "cx-lead@vendor.example", "IsActive": True}
        ),
    }


def _sync(store: StateStore, connector: SalesforceConnector) -> TaskSync:
    return TaskSync(store, connector.task_crm(), fallback_owner="cx-lead@vendor.example")


def _tasks(fake: FakeSalesforce) -> list[dict]:  # type: ignore[type-arg]
    return list(fake.org.records["Task"].values())


def _create(sync: TaskSync) -> TaskReport:
    report = TaskReport()
    sync.create_pending(NOW, report)
    return report


def test_tasks_are_created_with_every_field_in_counted_batches_of_1000(
    fake: FakeSalesforce,
    connector: SalesforceConnector,
    store: StateStore,
    users: dict[str, str],
) -> None:
    sync = _sync(store, connector)
    sync.repo.record(planned(1200))

    report = _create(sync)

    assert (report.created, report.failed) == (1200, 0)
    # ⌈1200/1000⌉ counted create calls: one Composite of 5 x 200, one collection of 200.
    # ⌈1200/1000⌉ counted create calls: one Composite of 5 x 200, one collection of 200;
    # one User query for the two e-mails (owner, fallback), read in a Composite of its own;
    # Task described once (the alert-key field is there).
    assert dict(fake.calls) == {
        "describe": 1,
        "composite": 2,
        "composite_read": 1,
        "composite_write": 1,
        "collection_create": 1,
    }
    task = next(t for t in _tasks(fake) if t["AX_Alert_Key__c"] == "new-detractor:survey/R0")
    assert task["WhatId"] == "001000000000001AAA"
    assert task["WhoId"] == "003000000000001AAA"
    assert task["OwnerId"] == users["owner1@vendor.example"]  # found by e-mail, any case
    assert task["ActivityDate"] == "2026-06-03"
    assert task["Subject"] == "Call back contact 0 (score 3, Support) within 48 h"
    assert task["Description"].startswith("Dana scored 3.")
    assert (task["Priority"], task["Status"], task["IsClosed"]) == ("High", "Not Started", False)
    row = sync.repo.get("new-detractor:survey/R0")
    assert row is not None
    assert (row.status, row.crm_task_id, row.owner_id) == ("open", task["Id"], task["OwnerId"])


def test_owners_not_found_or_inactive_get_the_fallback_and_users_are_asked_once(
    fake: FakeSalesforce,
    connector: SalesforceConnector,
    store: StateStore,
    users: dict[str, str],
) -> None:
    sync = _sync(store, connector)
    sync.repo.record(
        [
            *planned(1, owner="gone@vendor.example", prefix="inactive"),
            *planned(1, owner="nobody@vendor.example", prefix="unknown"),
            *planned(1, owner=None, prefix="none"),
            *planned(1, owner="nobody@vendor.example", fallback=None, prefix="nofallback"),
        ]
    )
    _create(sync)
    owners = {t["AX_Alert_Key__c"].rsplit("/", 1)[1]: t.get("OwnerId") for t in _tasks(fake)}
    lead = users["cx-lead@vendor.example"]
    assert owners == {"inactive0": lead, "unknown0": lead, "none0": lead, "nofallback0": None}
    assert sync.repo.get("new-detractor:survey/inactive0").owner_email == "cx-lead@vendor.example"  # type: ignore[union-attr]
    queries = fake.calls["composite_read"]
    sync.repo.record(planned(1, owner="gone@vendor.example", prefix="again"))
    _create(sync)
    assert fake.calls["composite_read"] == queries  # owners are cached for the sync's life


def test_a_refused_task_keeps_salesforces_error_and_is_retried(
    fake: FakeSalesforce,
    connector: SalesforceConnector,
    store: StateStore,
    users: dict[str, str],
) -> None:
    sync = _sync(store, connector)
    tasks = planned(3)
    fake.create_errors[("Subject", tasks[1].title)] = (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Subject must not name the score",
    )
    sync.repo.record(tasks)
    report = _create(sync)
    assert (report.created, report.failed) == (2, 1)
    row = sync.repo.get(tasks[1].key)
    assert row is not None
    assert row.status == "pending"
    assert row.last_error == "FIELD_CUSTOM_VALIDATION_EXCEPTION: Subject must not name the score"

    fake.create_errors.clear()
    retry = _create(_sync(store, connector))
    assert (retry.created, retry.recovered) == (1, 0)  # looked up first: not there, created
    assert len(_tasks(fake)) == 3


def test_a_task_created_before_a_crash_is_found_by_its_key_not_created_again(
    fake: FakeSalesforce,
    connector: SalesforceConnector,
    store: StateStore,
    users: dict[str, str],
) -> None:
    sync = _sync(store, connector)
    tasks = planned(2)
    sync.repo.record(tasks)
    # The agent sent the batch (attempt recorded), Salesforce created it, the agent died.
    sync.repo.mark_attempt([t.key for t in tasks], {})
    connector.task_crm().create_tasks(sync.specs(sync.repo.rows("pending")))
    creates = fake.calls["collection_create"] + fake.calls["composite_write"]

    report = _create(_sync(store, connector))

    assert (report.recovered, report.created) == (2, 0)
    assert fake.calls["collection_create"] + fake.calls["composite_write"] == creates
    assert len(_tasks(fake)) == 2
    assert {r.status for r in sync.repo.rows("open")} == {"open"}


def test_completed_tasks_are_read_back_incrementally_and_close_their_loops(
    fake: FakeSalesforce,
    connector: SalesforceConnector,
    store: StateStore,
    users: dict[str, str],
    mock: responses.RequestsMock,
) -> None:
    sync = _sync(store, connector)
    store_responses(store, ["R0", "R1"])
    sync.repo.record(planned(2))
    _create(sync)
    first = sync.read_back(NOW)
    assert first.completed_in_crm == 0

    fake.org.tick(3600)
    task = next(t for t in _tasks(fake) if t["AX_Alert_Key__c"].endswith("/R1"))
    fake.org.update("Task", task["Id"], {"Status": "Completed"})
    close_task(fake.org, task)

    report = sync.read_back(NOW + timedelta(hours=2))

    assert report.completed_in_crm == 1
    done = datetime(2024, 1, 1, 1, 0, tzinfo=UTC)  # the fake org's clock, an hour on
    assert loop_closed_at(store, "R1") == done
    assert loop_closed_at(store, "R0") is None
    sent = [unquote(f"{c.request.url} {c.request.body or ''}") for c in mock.calls]
    task_reads = [t for t in sent if "FROM Task" in t and "IsClosed" in t]
    assert len(task_reads) == 2
    assert "SystemModstamp >=" not in task_reads[0]  # the first read: every task of the agent
    assert "SystemModstamp >=" in task_reads[1]  # then incremental, from the stored cursor
    row = sync.repo.get("new-detractor:survey/R1")
    assert row is not None
    assert (row.status, row.crm_completed_at) == ("completed", done)


def test_a_loop_closed_here_completes_the_salesforce_task(
    fake: FakeSalesforce,
    connector: SalesforceConnector,
    store: StateStore,
    users: dict[str, str],
    mock: responses.RequestsMock,
) -> None:
    sync = _sync(store, connector)
    tasks = planned(1)
    sync.repo.record(tasks)
    _create(sync)
    sync.repo.request_completion({tasks[0].key: (NOW + timedelta(hours=1), "U42")})
    report = TaskReport()
    sync.push_closures(build_inputs(document([]), []), NOW, report)

    assert report.pushed == 1
    task = _tasks(fake)[0]
    assert (task["Status"], task["IsClosed"]) == ("Completed", True)
    patch = [json.loads(c.request.body) for c in mock.calls if c.request.method == "PATCH"][-1]
    assert patch["records"] == [
        {"attributes": {"type": "Task"}, "id": task["Id"], "Status": "Completed"}
    ]
    assert sync.repo.get(tasks[0].key).status == "completed"  # type: ignore[union-attr]


def test_without_the_alert_key_field_tasks_wait_and_the_error_names_the_fix(
    connector: SalesforceConnector, store: StateStore
) -> None:
    sync = _sync(store, connector)
    sync.repo.record(planned(1))
    with pytest.raises(
        TasksNotReadyError, match=r"AX_Alert_Key__c is missing.*crm provision salesforce"
    ):
        _create(sync)
    assert sync.repo.get(planned(1)[0].key).status == "pending"  # type: ignore[union-attr]


def test_provisioning_creates_the_alert_key_field_on_activity(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    report = provision(connector.client, default_field_specs(), task_key=True)
    assert TASK_KEY in report.created
    assert TASK_KEY in fake.metadata["external_ids"]
    assert TASK_KEY in fake.metadata["permission_sets"][PERMISSION_SET]
    assert connector.task_crm().check_tasks() == []
    again = provision(connector.client, default_field_specs(), task_key=True)
    assert TASK_KEY in again.existing

"""HubSpot ``tasks`` objects: batch creation with associations, owners, read-back, crashes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.core.contract import default_field_specs
from agent.rules.facts import build_inputs
from agent.state.store import StateStore
from agent.tasks.sync import TaskReport, TasksNotReadyError, TaskSync
from connectors.hubspot import HubSpotConnector
from tests.alerting.factories import document
from tests.hubspot.fakeportal import FakePortal
from tests.tasks.planned import NOW, loop_closed_at, planned, store_responses

CREATE = r"/crm/v3/objects/tasks/batch/create"


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def seeded(portal: FakePortal) -> dict[str, str]:
    """A company, a contact, owners (one archived) and the provisioned alert-key property."""
    portal.define("tasks", "ax_alert_key", "string", "text")
    portal.add_owner("501", "owner1@vendor.example")
    portal.add_owner("502", "gone@vendor.example", archived=True)
    portal.add_owner("503", "cx-lead@vendor.example")
    company = portal.add_company(name="Acme")
    contact = portal.add_contact(company=company, email="dana@acme.example")
    return {"company": company, "contact": contact}


def _sync(store: StateStore, connector: HubSpotConnector) -> TaskSync:
    return TaskSync(store, connector.task_crm(), fallback_owner="cx-lead@vendor.example")


def _create(sync: TaskSync) -> TaskReport:
    report = TaskReport()
    sync.create_pending(NOW, report)
    return report


def _tasks(portal: FakePortal) -> dict[str, dict[str, str | None]]:
    return {
        str(r.properties.get("ax_alert_key")): dict(r.properties)
        for r in portal.stores["tasks"].live.values()
    }


def test_tasks_are_created_100_a_call_with_properties_and_associations(
    portal: FakePortal,
    make_connector: Callable[..., HubSpotConnector],
    store: StateStore,
    seeded: dict[str, str],
) -> None:
    sync = _sync(store, make_connector())
    sync.repo.record(planned(250, account=seeded["company"], contact=seeded["contact"]))

    report = _create(sync)

    assert (report.created, report.failed) == (250, 0)
    assert len(portal.calls("POST", CREATE)) == 3  # ⌈250/100⌉
    assert len(portal.calls("GET", r"/crm/v3/owners/?")) == 1  # owners read once, by e-mail
    task = _tasks(portal)["new-detractor:survey/R0"]
    assert task["hs_task_subject"] == "Call back contact 0 (score 3, Support) within 48 h"
    assert task["hs_task_body"] == "Dana scored 3. Call back, listen, and mark this task completed."
    assert task["hs_timestamp"] == "2026-06-03T12:00:00.000Z"
    assert (task["hs_task_priority"], task["hs_task_status"]) == ("HIGH", "NOT_STARTED")
    assert task["hubspot_owner_id"] == "501"
    body = portal.calls("POST", CREATE)[0].body
    links = body["inputs"][0]["associations"]
    assert {(a["to"]["id"], a["types"][0]["associationTypeId"]) for a in links} == {
        (seeded["company"], 192),
        (seeded["contact"], 204),
    }
    created = next(iter(portal.stores["tasks"].live.values()))
    assert portal.links[("tasks", "companies")][created.id] == [(seeded["company"], False)]


def test_archived_or_unknown_owners_get_the_fallback(
    portal: FakePortal,
    make_connector: Callable[..., HubSpotConnector],
    store: StateStore,
    seeded: dict[str, str],
) -> None:
    sync = _sync(store, make_connector())
    sync.repo.record(
        [
            *planned(
                1,
                owner="gone@vendor.example",
                prefix="archived",
                account=seeded["company"],
                contact=None,
            ),
            *planned(
                1,
                owner="nobody@vendor.example",
                prefix="unknown",
                account=seeded["company"],
                contact=None,
            ),
            *planned(
                1,
                owner="x@vendor.example",
                fallback=None,
                prefix="none",
                account=seeded["company"],
                contact=None,
            ),
        ]
    )
    _create(sync)
    tasks = _tasks(portal)
    assert tasks["new-detractor:survey/archived0"]["hubspot_owner_id"] == "503"
    assert tasks["new-detractor:survey/unknown0"]["hubspot_owner_id"] == "503"
    assert tasks["new-detractor:survey/none0"].get("hubspot_owner_id") is None


def test_a_refused_task_is_isolated_its_error_kept_and_retried(
    portal: FakePortal,
    make_connector: Callable[..., HubSpotConnector],
    store: StateStore,
    seeded: dict[str, str],
) -> None:
    sync = _sync(store, make_connector())
    good = planned(3, account=seeded["company"], contact=seeded["contact"])
    bad = planned(1, account=seeded["company"], contact="999999", prefix="bad")  # no such contact
    sync.repo.record([*good, *bad])

    report = _create(sync)

    assert (report.created, report.failed) == (3, 1)
    row = sync.repo.get(bad[0].key)
    assert row is not None
    assert row.status == "pending"
    assert row.last_error is not None
    assert row.last_error.startswith("VALIDATION_ERROR")
    assert len(portal.calls("POST", CREATE)) > 1  # split until the bad one stood alone
    portal.add_contact("999999", company=seeded["company"], email="late@acme.example")
    retry = _create(_sync(store, make_connector()))
    assert retry.created == 1
    assert len(_tasks(portal)) == 4


def test_a_task_created_before_a_crash_is_found_by_its_key(
    portal: FakePortal,
    make_connector: Callable[..., HubSpotConnector],
    store: StateStore,
    seeded: dict[str, str],
) -> None:
    connector = make_connector()
    sync = _sync(store, connector)
    tasks = planned(2, account=seeded["company"], contact=None)
    sync.repo.record(tasks)
    sync.repo.mark_attempt([t.key for t in tasks], {})
    connector.task_crm().create_tasks(sync.specs(sync.repo.rows("pending")))
    creates = len(portal.calls("POST", CREATE))

    report = _create(_sync(store, make_connector()))

    assert (report.recovered, report.created) == (2, 0)
    assert len(portal.calls("POST", CREATE)) == creates
    assert len(_tasks(portal)) == 2


def test_tasks_completed_in_hubspot_close_their_loops_and_closures_complete_tasks(
    portal: FakePortal,
    make_connector: Callable[..., HubSpotConnector],
    store: StateStore,
    seeded: dict[str, str],
) -> None:
    sync = _sync(store, make_connector())
    store_responses(store, ["R0", "R1", "R2"])
    tasks = planned(3, account=seeded["company"], contact=None)
    sync.repo.record(tasks)
    _create(sync)
    assert sync.read_back(NOW).completed_in_crm == 0

    portal.tick(60_000)
    by_key = {r.properties["ax_alert_key"]: r.id for r in portal.stores["tasks"].live.values()}
    portal.modify("tasks", by_key[tasks[1].key], hs_task_status="COMPLETED")
    report = sync.read_back(NOW)

    assert report.completed_in_crm == 1
    assert loop_closed_at(store, "R1") is not None
    assert loop_closed_at(store, "R0") is None
    search = portal.calls("POST", r"/crm/v3/objects/tasks/search")[-1].body
    filters = search["filterGroups"][0]["filters"]
    assert {"propertyName": "ax_alert_key", "operator": "HAS_PROPERTY"} in filters

    sync.repo.request_completion({tasks[2].key: (NOW, "U42")})
    pushed = TaskReport()
    sync.push_closures(build_inputs(document([]), []), NOW, pushed)
    assert pushed.pushed == 1
    assert portal.value("tasks", by_key[tasks[2].key], "hs_task_status") == "COMPLETED"
    assert portal.value("tasks", by_key[tasks[2].key], "hs_task_completion_date") is not None


def test_without_the_alert_key_property_tasks_wait_naming_the_fix(
    portal: FakePortal, make_connector: Callable[..., HubSpotConnector], store: StateStore
) -> None:
    sync = _sync(store, make_connector())
    sync.repo.record(planned(1))
    with pytest.raises(TasksNotReadyError, match=r"ax_alert_key is missing.*crm provision hubspot"):
        _create(sync)


def test_provisioning_creates_the_alert_key_task_property(
    portal: FakePortal, make_connector: Callable[..., HubSpotConnector]
) -> None:
    connector = make_connector()
    plan = connector.plan_provisioning(default_field_specs(), tasks=True)
    assert "create tasks property ax_alert_key ('AX alert key'): string/text" in plan.lines()
    result = connector.apply_provisioning(plan)
    assert result.failed == []
    assert "ax_alert_key" in portal.properties["tasks"]
    assert connector.task_crm().check_tasks() == []
    again = connector.plan_provisioning(default_field_specs(), tasks=True)
    assert not any("ax_alert_key" in line for line in again.lines())

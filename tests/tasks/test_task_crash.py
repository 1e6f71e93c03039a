"""kill -9 between the CRM's create and the local record: the restart creates no duplicate.

A child process creates the pending tasks against a fake CRM served over loopback HTTP
and kills itself with SIGKILL as soon as the CRM answered; the next sync finds every
task by its alert key and creates none again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.state.store import StateStore
from agent.tasks.sync import TaskReport, TaskSync
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.fakeserve import serve_stdlib
from tests.salesforce.fake import FakeSalesforce, add_task_key
from tests.service.loopback import LoopbackServer, salesforce_app
from tests.tasks.crash_child import _task_crm
from tests.tasks.planned import planned

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _kill_child(state_url: str, crm: str, url: str, token: str) -> int:
    command = [sys.executable, "-m", "tests.tasks.crash_child", state_url, crm, url, token]
    return subprocess.run(command, cwd=REPO, timeout=120, check=False).returncode


def _pending(state_url: str, crm: str, rows: int, **kwargs: object) -> list[str]:
    store = StateStore.open(state_url)
    tasks = planned(rows, **kwargs)  # type: ignore[arg-type]
    TaskSync(store, _NoCrm(crm)).repo.record(tasks)
    store.close()
    return [t.key for t in tasks]


class _NoCrm:
    """Only a name: the task outbox of that CRM, read and written without calling it."""

    max_task_batch = 1000

    def __init__(self, name: str) -> None:
        self.name = name


def _resume(state_url: str, crm: str, url: str, token: str) -> tuple[TaskReport, StateStore]:
    store = StateStore.open(state_url)
    sync = TaskSync(store, _task_crm(crm, url, token), fallback_owner="cx-lead@vendor.example")
    report = TaskReport()
    sync.create_pending(datetime.now(UTC), report)
    return report, store


@pytest.fixture
def salesforce() -> Iterator[tuple[FakeSalesforce, str]]:
    fake = FakeSalesforce()
    add_task_key(fake)
    fake.org.insert("User", {"Email": "owner1@vendor.example"})
    server = LoopbackServer(salesforce_app(fake))
    yield fake, server.url
    server.close()


def test_salesforce_kill_9_after_create_then_restart_creates_no_duplicate(
    tmp_path: Path, salesforce: tuple[FakeSalesforce, str]
) -> None:
    fake, url = salesforce
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    keys = _pending(state_url, "salesforce", 250)

    assert _kill_child(state_url, "salesforce", url, "fake-session") == -signal.SIGKILL
    assert len(fake.org.records["Task"]) == 250  # in Salesforce, not recorded as such here
    creates = fake.calls["composite_write"] + fake.calls["collection_create"]

    report, store = _resume(state_url, "salesforce", url, "fake-session")

    assert (report.recovered, report.created) == (250, 0)
    assert fake.calls["composite_write"] + fake.calls["collection_create"] == creates
    assert len(fake.org.records["Task"]) == 250
    by_key = {t["AX_Alert_Key__c"]: t["Id"] for t in fake.org.records["Task"].values()}
    sync = TaskSync(store, _NoCrm("salesforce"))
    assert {r.key: r.crm_task_id for r in sync.repo.rows("open")} == {k: by_key[k] for k in keys}
    store.close()


def test_hubspot_kill_9_after_create_then_restart_creates_no_duplicate(tmp_path: Path) -> None:
    portal = FakePortal()
    portal.define("tasks", "ax_alert_key", "string", "text")
    portal.add_owner("501", "owner1@vendor.example")
    company = portal.add_company(name="Acme")
    server, url = serve_stdlib(portal)
    try:
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        _pending(state_url, "hubspot", 150, account=company, contact=None)

        assert _kill_child(state_url, "hubspot", url, portal.token) == -signal.SIGKILL
        # The child died after the first batch of 100 was created.
        assert len(portal.stores["tasks"].live) == 100
        report, store = _resume(state_url, "hubspot", url, portal.token)
        store.close()
    finally:
        server.shutdown()
        server.server_close()

    assert (report.recovered, report.created) == (100, 50)
    assert len(portal.stores["tasks"].live) == 150
    keys = [r.properties["ax_alert_key"] for r in portal.stores["tasks"].live.values()]
    assert len(set(keys)) == 150
    assert portal.violations == []

"""Create the pending tasks and die (SIGKILL) right after the CRM confirmed them.

Used by the task crash tests: ``python -m tests.tasks.crash_child STATE_URL CRM URL TOKEN``
with CRM ``salesforce`` (URL: the instance, TOKEN: a session id) or ``hubspot`` (URL: the
API base, TOKEN: the private app token). The kill lands between "the CRM created the
tasks" and "the agent recorded them": the window a restart must not create twice.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agent.config.settings import HubSpotSettings, SalesforceSettings
from agent.core.ports import TaskOutcome, TaskSpec
from agent.state.store import StateStore
from agent.tasks.sync import TaskReport, TaskSync


def _task_crm(crm: str, url: str, token: str) -> Any:
    if crm == "salesforce":
        from connectors.salesforce import from_settings as salesforce

        sf = SalesforceSettings(session_id=token, instance_url=url)  # type: ignore[arg-type]
        return salesforce(sf).task_crm()
    from connectors.hubspot import from_settings as hubspot

    hs = HubSpotSettings(access_token=token, base_url=url)  # type: ignore[arg-type]
    return hubspot(hs).task_crm()


def main() -> None:
    state_url, crm, url, token = sys.argv[1:5]
    tasks = _task_crm(crm, url, token)
    create = tasks.create_tasks

    def create_then_die(specs: Sequence[TaskSpec]) -> list[TaskOutcome]:
        outcomes = create(specs)
        os.kill(os.getpid(), signal.SIGKILL)  # the CRM has them; the agent never hears it
        return outcomes

    tasks.create_tasks = create_then_die
    sync = TaskSync(StateStore.open(state_url), tasks, fallback_owner="cx-lead@vendor.example")
    sync.create_pending(datetime.now(UTC), TaskReport())


if __name__ == "__main__":
    main()

"""Salesforce ``Task`` records: the ``TaskCrm`` port for one org.

A task is created with ``WhatId`` (the account), ``WhoId`` (the contact, when known),
``OwnerId`` (the user found by e-mail), ``ActivityDate`` (the due day, UTC),
``Subject``, ``Description``, ``Priority``, ``Status`` and ``AX_Alert_Key__c``, the
agent's alert key (an external-id text field on Activity, created by ``crm
provision``). Tasks go out like the write-back: sObject Collections (``POST``, 200
records) packed five to a Composite request, 1,000 tasks per counted call. Owners are
looked up with one ``User`` query per 100 e-mails; an inactive user counts as
unknown. Completions are read back incrementally on ``SystemModstamp`` (``IsClosed``,
``CompletedDateTime``); completing a task sets ``Status`` to ``Completed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agent.core.batching import chunked
from agent.core.ports import TaskChange, TaskChanges, TaskOutcome, TaskSpec
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.cursor import advance, lower_bound, parse_stamp
from connectors.salesforce.errors import error_of
from connectors.salesforce.query import QueryReader, Record
from connectors.salesforce.schema import Schema
from connectors.salesforce.soql import in_list, select
from connectors.salesforce.write import CollectionWriter

__all__ = ["KEY_FIELD", "PRIORITIES", "SalesforceTasks", "task_record"]

_log = structlog.get_logger(__name__)
KEY_FIELD = "AX_Alert_Key__c"
PRIORITIES = {"low": "Low", "normal": "Normal", "high": "High"}
_OPEN = "Not Started"
_DONE = "Completed"
#: E-mails per ``User`` query and keys per ``Task`` lookup: short SOQL, few calls.
_IN_CHUNK = 100
_WRITTEN = (
    "WhatId",
    "WhoId",
    "OwnerId",
    "ActivityDate",
    "Subject",
    "Description",
    "Priority",
    "Status",
)


class SalesforceTasks:
    """Creates, finds, completes and reads back the agent's tasks in one org."""

    name = "salesforce"

    def __init__(
        self,
        client: SalesforceClient,
        writer: CollectionWriter,
        *,
        overlap: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._writer = writer
        self._reader = QueryReader(client)
        self._overlap = overlap
        self._clock = clock
        self._schema = Schema(client)
        self.max_task_batch = writer.max_batch

    def check_tasks(self) -> list[str]:
        """What keeps the agent from creating tasks: the alert-key field, Task access."""
        fix = "run `ax-agent crm provision salesforce` (it creates Activity.AX_Alert_Key__c)"
        key = self._schema.field("Task", KEY_FIELD)
        if key is None:
            return [f"Task field {KEY_FIELD} is missing. Fix: {fix}"]
        problems = [] if key.updateable else [f"Task field {KEY_FIELD} is read-only. Fix: {fix}"]
        for name in _WRITTEN:
            info = self._schema.field("Task", name)
            if info is None or not info.updateable:
                problems.append(
                    f"Task field {name} is not editable by the agent's user. "
                    "Fix: give the integration user Create and Edit on Task"
                )
        return problems

    def resolve_owners(self, emails: Sequence[str]) -> Mapping[str, str | None]:
        """Active users by e-mail (case-insensitive); an inactive or unknown one is None."""
        found: dict[str, str | None] = dict.fromkeys(emails)
        wanted = {e.lower(): e for e in emails}
        for chunk in chunked(sorted(wanted), _IN_CHUNK):
            soql = select("User", ["Id", "Email", "IsActive"], where=[f"Email IN {in_list(chunk)}"])
            for record in self._records(soql):
                email = wanted.get(str(record.get("Email") or "").lower())
                if email is not None and record.get("IsActive") and found[email] is None:
                    found[email] = str(record["Id"])
        _log.info(
            "salesforce_owners_resolved",
            asked=len(emails),
            found=sum(1 for v in found.values() if v),
        )
        return found

    def find_tasks(self, keys: Sequence[str]) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for chunk in chunked(list(keys), _IN_CHUNK):
            soql = select("Task", ["Id", KEY_FIELD], where=[f"{KEY_FIELD} IN {in_list(chunk)}"])
            out.update((str(r[KEY_FIELD]), str(r["Id"])) for r in self._records(soql))
        return out

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskOutcome]:
        records = [task_record(t) for t in tasks]
        results = self._writer.create(records)
        return [_outcome(t.key, r) for t, r in zip(tasks, results, strict=True)]

    def complete_tasks(self, tasks: Sequence[tuple[str, str, datetime]]) -> list[TaskOutcome]:
        records = [
            {"attributes": {"type": "Task"}, "id": tid, "Status": _DONE} for _, tid, _ in tasks
        ]
        results = self._writer.send("PATCH", records)
        return [_outcome(key, r, tid) for (key, tid, _), r in zip(tasks, results, strict=True)]

    def task_changes(self, cursor: str | None) -> TaskChanges:
        """The agent's tasks modified since ``cursor`` (minus the overlap), oldest first."""
        started = self._clock()
        since = lower_bound(cursor, self._overlap)
        fields = ["Id", KEY_FIELD, "IsClosed", "CompletedDateTime", "SystemModstamp"]
        soql = select("Task", fields, since=since, where=[f"{KEY_FIELD} != null"])
        changes: list[TaskChange] = []
        newest: datetime | None = None
        for record in self._records(soql):
            stamp = parse_stamp(str(record["SystemModstamp"]))
            newest = stamp if newest is None or stamp > newest else newest
            changes.append(_change(record))
        return TaskChanges(changes, advance(cursor, newest, started))

    def _records(self, soql: str) -> list[Record]:
        return [r for page in self._reader.pages(soql) for r in page]


def task_record(task: TaskSpec) -> dict[str, Any]:
    """The ``Task`` a spec becomes: only the fields that have a value."""
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "WhatId": task.account_id,
        "ActivityDate": task.due_at.astimezone(UTC).date().isoformat(),
        "Subject": task.subject[:255],
        "Description": task.body[:32_000],
        "Priority": PRIORITIES[task.priority],
        "Status": _OPEN,
        KEY_FIELD: task.key,
    }
    if task.contact_id:
        record["WhoId"] = task.contact_id
    if task.owner_id:
        record["OwnerId"] = task.owner_id
    return record


def _outcome(key: str, result: Mapping[str, Any], task_id: str | None = None) -> TaskOutcome:
    if result.get("success"):
        return TaskOutcome(key, ok=True, task_id=str(result.get("id") or task_id or ""))
    code, message = error_of(result.get("errors") or [])
    return TaskOutcome(key, ok=False, error_code=code or "UNKNOWN_ERROR", message=message)


def _change(record: Record) -> TaskChange:
    completed = record.get("CompletedDateTime")
    return TaskChange(
        task_id=str(record["Id"]),
        key=str(record.get(KEY_FIELD) or "") or None,
        completed=bool(record.get("IsClosed")),
        completed_at=parse_stamp(str(completed)) if completed else None,
    )

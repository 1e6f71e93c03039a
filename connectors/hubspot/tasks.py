"""HubSpot ``tasks`` objects: the ``TaskCrm`` port for one portal.

Tasks are created 100 a call (``POST /crm/v3/objects/tasks/batch/create``), each
associated with its company (type 192, task to company) and contact (204, task to
contact), with ``hs_task_subject``, ``hs_task_body``, ``hs_timestamp`` (the due time),
``hs_task_priority``, ``hs_task_status``, ``hubspot_owner_id`` (the owner found by
e-mail through the owners API; an archived, i.e. deactivated, owner counts as
unknown) and ``ax_alert_key``, the agent's alert key (a task property created by
``crm provision hubspot``). HubSpot refuses a whole batch with a 400 when one input is
invalid, so such a batch is split in halves until the bad task stands alone. Tasks
completed in HubSpot (``hs_task_status = COMPLETED``) are read back through the search
API, modified since the last read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agent.core.batching import chunked
from agent.core.ports import TaskChange, TaskChanges, TaskOutcome, TaskSpec
from connectors.hubspot.client import HubSpotApis
from connectors.hubspot.cursor import advance, format_cursor, parse_cursor, window
from connectors.hubspot.errors import HubSpotRequestError
from connectors.hubspot.owners import OwnerDirectory
from connectors.hubspot.pages import search_pages
from connectors.hubspot.properties import PROVISION_FIX, fetch_schema
from connectors.hubspot.records import results
from connectors.hubspot.transport import Transport
from connectors.hubspot.values import parse_datetime

__all__ = ["KEY_PROPERTY", "TASK_TO_COMPANY", "TASK_TO_CONTACT", "HubSpotTasks", "task_input"]

_log = structlog.get_logger(__name__)
KEY_PROPERTY = "ax_alert_key"
TASK_TO_CONTACT = 204
TASK_TO_COMPANY = 192
_PRIORITY = {"low": "LOW", "normal": "MEDIUM", "high": "HIGH"}
_DONE = "COMPLETED"
_SPLITTABLE = frozenset({400, 409, 422})
_READ = ("hs_task_status", "hs_task_completion_date", KEY_PROPERTY)
_WRITTEN = (
    "hs_task_subject",
    "hs_task_body",
    "hs_timestamp",
    "hs_task_priority",
    "hs_task_status",
    "hubspot_owner_id",
)


class HubSpotTasks:
    """Creates, finds, completes and reads back the agent's tasks in one portal."""

    name = "hubspot"

    def __init__(
        self,
        transport: Transport,
        apis: HubSpotApis,
        owners: OwnerDirectory,
        *,
        batch_size: int = 100,
        overlap: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._transport = transport
        self._apis = apis
        self._owners = owners
        self._overlap = overlap
        self._clock = clock
        self.max_task_batch = min(batch_size, 100)

    def check_tasks(self) -> list[str]:
        """The alert-key property exists on tasks and the task properties are writable."""
        schema = fetch_schema(self._transport, self._apis, "tasks")
        key = schema.get(KEY_PROPERTY)
        fix = f"run `{PROVISION_FIX}` (it creates the tasks property {KEY_PROPERTY})"
        if key is None:
            return [f"tasks property {KEY_PROPERTY} is missing. Fix: {fix}"]
        problems = (
            [f"tasks property {KEY_PROPERTY} is read-only. Fix: {fix}"] if key.read_only else []
        )
        for name in _WRITTEN:
            prop = schema.get(name)
            if prop is None or prop.read_only:
                problems.append(
                    f"tasks property {name} is missing or read-only. Fix: give the private "
                    "app the crm.objects.contacts.write scope (tasks are written with it)"
                )
        return problems

    def resolve_owners(self, emails: Sequence[str]) -> Mapping[str, str | None]:
        """Active owners by e-mail (one paged read of the owners API, cached)."""
        active = self._owners.ids_by_email()
        return {e: active.get(e.strip().lower()) for e in emails}

    def find_tasks(self, keys: Sequence[str]) -> Mapping[str, str]:
        found: dict[str, str] = {}
        for chunk in chunked(list(keys), 100):
            request = {
                "filterGroups": [
                    {"filters": [{"propertyName": KEY_PROPERTY, "operator": "IN", "values": chunk}]}
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": [KEY_PROPERTY],
                "limit": 100,
                "after": "0",
            }
            response = self._transport.call(
                "tasks.search", self._apis.objects_search.do_search, "tasks", request, search=True
            )
            for task in results(response):
                key = (task.get("properties") or {}).get(KEY_PROPERTY)
                if key:
                    found[str(key)] = str(task["id"])
        return found

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskOutcome]:
        if len(tasks) > self.max_task_batch:
            raise ValueError(f"at most {self.max_task_batch} tasks per call, got {len(tasks)}")
        by_key = self._create(list(tasks))
        return [by_key[t.key] for t in tasks]

    def _create(self, tasks: list[TaskSpec]) -> dict[str, TaskOutcome]:
        if not tasks:
            return {}
        request = {"inputs": [task_input(t) for t in tasks]}
        try:
            response = self._transport.call(
                "tasks.create", self._apis.objects_batch.create, "tasks", request
            )
        except HubSpotRequestError as err:
            if err.status not in _SPLITTABLE:
                raise
            return self._isolate(tasks, err)
        return _created({t.key for t in tasks}, response)

    def _isolate(self, tasks: list[TaskSpec], err: HubSpotRequestError) -> dict[str, TaskOutcome]:
        if len(tasks) == 1:
            code = err.category or f"HTTP_{err.status}"
            _log.warning("hubspot_task_rejected", key=tasks[0].key, error=str(err))
            return {
                tasks[0].key: TaskOutcome(tasks[0].key, ok=False, error_code=code, message=str(err))
            }
        half = len(tasks) // 2
        return {**self._create(tasks[:half]), **self._create(tasks[half:])}

    def complete_tasks(self, tasks: Sequence[tuple[str, str, datetime]]) -> list[TaskOutcome]:
        outcomes: list[TaskOutcome] = []
        for chunk in chunked(list(tasks), self.max_task_batch):
            request = {
                "inputs": [
                    {"id": tid, "properties": {"hs_task_status": _DONE}} for _, tid, _ in chunk
                ]
            }
            response = self._transport.call(
                "tasks.update", self._apis.objects_batch.update, "tasks", request
            )
            done = {str(r["id"]) for r in results(response)}
            outcomes.extend(
                TaskOutcome(
                    key,
                    ok=tid in done,
                    task_id=tid,
                    error_code=None if tid in done else "NOT_FOUND",
                )
                for key, tid, _ in chunk
            )
        return outcomes

    def task_changes(self, cursor: str | None) -> TaskChanges:
        """The agent's tasks modified since ``cursor`` (minus the overlap)."""
        started = self._clock()
        previous = parse_cursor(cursor) if cursor else None
        span = window(previous or datetime(2000, 1, 1, tzinfo=UTC), started, self._overlap)
        changes: list[TaskChange] = []
        seen: list[datetime | None] = []
        pages = search_pages(
            self._transport,
            self._apis,
            "tasks",
            date_property="hs_lastmodifieddate",
            window=span,
            properties=list(_READ),
            extra_filters=[{"propertyName": KEY_PROPERTY, "operator": "HAS_PROPERTY"}],
        )
        for page in pages:
            for record in page:
                seen.append(record.updated_at)
                completed = record.prop("hs_task_status") == _DONE
                changes.append(
                    TaskChange(
                        task_id=record.id,
                        key=record.prop(KEY_PROPERTY),
                        completed=completed,
                        completed_at=parse_datetime(record.prop("hs_task_completion_date")),
                    )
                )
        return TaskChanges(changes, format_cursor(advance(previous, seen, started)))


def task_input(task: TaskSpec) -> dict[str, Any]:
    """One input of the batch create: properties and the company/contact associations."""
    properties = {
        "hs_task_subject": task.subject,
        "hs_task_body": task.body,
        "hs_timestamp": task.due_at.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "hs_task_priority": _PRIORITY[task.priority],
        "hs_task_status": "NOT_STARTED",
        KEY_PROPERTY: task.key,
    }
    if task.owner_id:
        properties["hubspot_owner_id"] = task.owner_id
    associations = [_association(task.account_id, TASK_TO_COMPANY)]
    if task.contact_id:
        associations.append(_association(task.contact_id, TASK_TO_CONTACT))
    return {"properties": properties, "associations": associations}


def _association(target: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": target},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def _created(keys: set[str], response: Mapping[str, Any]) -> dict[str, TaskOutcome]:
    """Outcomes of a batch create: results carry the key, errors name no input, so a
    key without a result failed with the batch's error (or was not confirmed)."""
    out: dict[str, TaskOutcome] = {}
    for task in results(response):
        key = str((task.get("properties") or {}).get(KEY_PROPERTY) or "")
        if key in keys:
            out[key] = TaskOutcome(key, ok=True, task_id=str(task["id"]))
    errors = response.get("errors") or []
    code = str(errors[0].get("category")) if errors else "NOT_CONFIRMED"
    message = str(errors[0].get("message")) if errors else "HubSpot did not confirm this task"
    for key in keys - set(out):
        out[key] = TaskOutcome(key, ok=False, error_code=code, message=message)
    return out

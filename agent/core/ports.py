"""The small protocols connectors implement; the agent core depends only on these.

A CRM connector reads accounts and contacts (incrementally, from an opaque cursor),
checks that the agent's fields exist, and writes batches of field updates. A survey
source reads responses. A notifier posts the alert outbox's messages (their content
is ``agent.core.messages``). Nothing here knows a vendor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.messages import OutboxAlert, Sent
from agent.core.models import Account, Contact, Rejected, Response

__all__ = [
    "Batch",
    "CloseLoop",
    "CrmConnector",
    "CursorAfterWrite",
    "FieldProblem",
    "FieldUpdate",
    "FieldValue",
    "Notifier",
    "SurveyBatch",
    "SurveySource",
    "TaskChange",
    "TaskChanges",
    "TaskCrm",
    "TaskOutcome",
    "TaskPriority",
    "TaskSpec",
    "WriteOutcome",
]

T = TypeVar("T")

#: A logical value for a CRM field, already rounded: the connector formats it for the wire.
FieldValue = float | int | bool | str | tuple[str, ...] | datetime | None


@dataclass(frozen=True, slots=True)
class Batch(Generic[T]):
    """One page of changes. ``cursor`` is where to resume once this page is stored.

    ``snapshot`` says the pages of this read together hold every live record (a
    source without change tracking): whatever they leave out is gone.

    ``own_values`` says the records' ``crm_values`` differ from those of the last read
    only by the agent's own confirmed writes since (the CRM can tell its written
    fields are as the agent left them): a record that differs only there is no change
    (it is stored, but not counted, and no write-back compares it for that).
    """

    records: Sequence[T]
    deleted_ids: Sequence[str] = ()
    cursor: str | None = None
    snapshot: bool = False
    own_values: bool = False


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """New values for some of one record's fields, keyed by the CRM's field name."""

    record_id: str
    values: Mapping[str, FieldValue]


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What the CRM said about one record of a batch."""

    record_id: str
    ok: bool
    error_code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """A mapped field the CRM lacks or cannot take, and how an admin fixes it."""

    object: ObjectKind
    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.object} field {self.field}: {self.problem}. Fix: {self.fix}"


class CrmConnector(Protocol):
    """A CRM: accounts and contacts in, field updates out."""

    #: ``files``, ``salesforce`` or ``hubspot``: also the key of the field names in FieldSpec.
    name: str
    #: Most records one ``write`` call takes; the write-back step batches to this size.
    max_write_batch: int

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        """All accounts (``cursor`` None) or those changed since ``cursor``."""
        ...

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        """All contacts (``cursor`` None) or those changed since ``cursor``."""
        ...

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        """Every mapped field that is missing, read-only or of the wrong type."""
        ...

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """Apply one batch (at most ``max_write_batch``); one outcome per update."""
        ...


@runtime_checkable
class CursorAfterWrite(Protocol):
    """A CRM that can tell the read cursor its own write leads to (the plain-file CRM:
    the agent rewrites a file the accounts' or contacts' cursor covers).

    Without it, the agent's own write looks like a change and the next sync reads the
    object again; with it, the cursor moves past the write in the transaction that
    records it, and the confirmed values stand in for the CRM's until the next read.
    """

    def cursor_after_write(self, obj: ObjectKind, cursor: str | None) -> str | None:
        """``cursor`` moved past this connector's last write of ``obj``; None unless
        ``cursor`` was current just before that write (then the next read must look)."""
        ...


@dataclass(frozen=True, slots=True)
class SurveyBatch:
    """Accepted responses and rejected records of one page of a survey source."""

    responses: Sequence[Response]
    rejected: Sequence[Rejected] = field(default_factory=tuple)
    cursor: str | None = None


class SurveySource(Protocol):
    """Somewhere NPS answers come from: files, a CRM's survey objects …"""

    name: str

    def read_responses(self, cursor: str | None) -> Iterator[SurveyBatch]:
        """Responses since ``cursor`` (all when None)."""
        ...


class Notifier(Protocol):
    """What alert delivery needs from a messaging vendor (Slack, the console)."""

    def resolve(self, alert: OutboxAlert) -> str:
        """The channel id the alert will be posted to (the owner's DM, or the fallback)."""
        ...

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent: ...

    def find_sent(self, alert: OutboxAlert, channel_id: str) -> Sent | None:
        """The message already posted for this alert, if any."""
        ...

    def update(self, alert: OutboxAlert, target: Sent) -> Sent: ...

    def attach(self, alert: OutboxAlert, message: Sent) -> None:
        """Add the alert's attachment to its posted message (Slack: into its thread)."""
        ...

    def find_attachment(self, alert: OutboxAlert, message: Sent) -> bool:
        """Whether the attachment is already with the message (an earlier try sent it)."""
        ...


#: Closes a detractor's loop from a button press: ``(alert_id, closed_by)`` -> whether it
#: was recorded (False for an unknown or already closed alert). The messaging adapter
#: calls it after checking the request; ``agent.alerts.interactivity`` implements it.
CloseLoop = Callable[[str, str], bool]


# -- CRM tasks ------------------------------------------------------------------------

TaskPriority = Literal["low", "normal", "high"]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task to create on a CRM user's task list; ``key`` is the agent's alert key.

    ``owner_id`` is the CRM user (as ``TaskCrm.resolve_owners`` found it); None leaves
    the owner to the CRM (the integration user). ``owner_email`` is who it is for.
    """

    key: str
    account_id: str
    contact_id: str | None
    owner_id: str | None
    owner_email: str | None
    subject: str
    body: str
    due_at: datetime
    priority: TaskPriority


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What the CRM said about one task of a batch (``task_id`` when it exists there)."""

    key: str
    ok: bool
    task_id: str | None = None
    error_code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class TaskChange:
    """A task as the CRM holds it now, read back since a cursor."""

    task_id: str
    key: str | None
    completed: bool
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """Tasks changed since a cursor, and where the next read resumes."""

    changes: Sequence[TaskChange]
    cursor: str | None


class TaskCrm(Protocol):
    """A CRM's task list: create tasks idempotently by key, read completions back."""

    name: str
    #: Most tasks one ``create_tasks`` or ``complete_tasks`` call takes.
    max_task_batch: int

    def check_tasks(self) -> list[str]:
        """What keeps the agent from creating tasks (a missing field, no access), with the fix."""
        ...

    def resolve_owners(self, emails: Sequence[str]) -> Mapping[str, str | None]:
        """Each e-mail's active CRM user id; None for an unknown or inactive user."""
        ...

    def find_tasks(self, keys: Sequence[str]) -> Mapping[str, str]:
        """The tasks already in the CRM for these keys: key -> task id."""
        ...

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskOutcome]:
        """Create one batch (at most ``max_task_batch``); one outcome per task, in order."""
        ...

    def complete_tasks(self, tasks: Sequence[tuple[str, str, datetime]]) -> list[TaskOutcome]:
        """Mark ``(key, task_id, completed_at)`` completed; one outcome per task."""
        ...

    def task_changes(self, cursor: str | None) -> TaskChanges:
        """Tasks of the agent (with a key) changed since ``cursor`` (all when None)."""
        ...

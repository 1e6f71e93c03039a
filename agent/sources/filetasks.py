"""The plain-file CRM's task list: ``ax_tasks.csv`` in the CRM folder.

Columns ``id,alert_key,account_id,contact_id,owner_email,subject,due_at,status,
completed_at``. The agent appends tasks with ``status`` ``open``; an admin marks one
done by setting ``status`` to ``completed`` (any case) and, optionally,
``completed_at`` (ISO 8601; empty: the time the agent reads it). Every rewrite is
atomic (temporary file, then rename), and creating a key that is already in the
file returns the row that is there: the file itself is idempotent by alert key.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.core.ports import TaskChange, TaskChanges, TaskOutcome, TaskSpec

__all__ = ["TASK_COLUMNS", "FilesTasks", "tasks_file"]

TASK_COLUMNS = (
    "id",
    "alert_key",
    "account_id",
    "contact_id",
    "owner_email",
    "subject",
    "due_at",
    "status",
    "completed_at",
)
_DONE = "completed"


def tasks_file(folder: Path) -> Path:
    return folder / "ax_tasks.csv"


class FilesTasks:
    """``agent.core.ports.TaskCrm`` over ``ax_tasks.csv``; an owner's id is their e-mail."""

    name = "files"
    max_task_batch = 1_000_000

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = tasks_file(folder)

    def check_tasks(self) -> list[str]:
        """The file is the agent's own: nothing to check."""
        return []

    def resolve_owners(self, emails: Sequence[str]) -> Mapping[str, str | None]:
        """A folder has no user directory: every e-mail stands for itself."""
        return {e: e for e in emails}

    def find_tasks(self, keys: Sequence[str]) -> Mapping[str, str]:
        wanted = set(keys)
        return {r["alert_key"]: r["id"] for r in self._read() if r["alert_key"] in wanted}

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskOutcome]:
        rows = self._read()
        by_key = {r["alert_key"]: r for r in rows}
        for task in tasks:
            if task.key not in by_key:
                by_key[task.key] = _row(task)
                rows.append(by_key[task.key])
        self._write(rows)
        return [TaskOutcome(t.key, ok=True, task_id=by_key[t.key]["id"]) for t in tasks]

    def complete_tasks(self, tasks: Sequence[tuple[str, str, datetime]]) -> list[TaskOutcome]:
        rows = self._read()
        by_id = {r["id"]: r for r in rows}
        outcomes = []
        for key, task_id, when in tasks:
            row = by_id.get(task_id)
            if row is None:
                outcomes.append(TaskOutcome(key, ok=False, error_code="NOT_FOUND", message=task_id))
                continue
            if row["status"].strip().lower() != _DONE:
                row["status"] = _DONE
                row["completed_at"] = row["completed_at"] or _iso(when)
            outcomes.append(TaskOutcome(key, ok=True, task_id=task_id))
        self._write(rows)
        return outcomes

    def task_changes(self, cursor: str | None) -> TaskChanges:
        """Every row when the file changed since ``cursor`` (its content hash)."""
        digest = _digest(self.path)
        if cursor == digest:
            return TaskChanges((), cursor)
        changes = [
            TaskChange(
                task_id=r["id"],
                key=r["alert_key"] or None,
                completed=r["status"].strip().lower() == _DONE,
                completed_at=_parse(r["completed_at"]),
            )
            for r in self._read()
            if r["id"]
        ]
        return TaskChanges(changes, digest)

    def _read(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            return [{c: (row.get(c) or "").strip() for c in TASK_COLUMNS} for row in reader]

    def _write(self, rows: Sequence[Mapping[str, str]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(TASK_COLUMNS)
                writer.writerows([row.get(c, "") for c in TASK_COLUMNS] for row in rows)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _row(task: TaskSpec) -> dict[str, str]:
    return {
        "id": "T-" + hashlib.sha256(task.key.encode()).hexdigest()[:12],
        "alert_key": task.key,
        "account_id": task.account_id,
        "contact_id": task.contact_id or "",
        "owner_email": task.owner_email or "",
        "subject": task.subject,
        "due_at": _iso(task.due_at),
        "status": "open",
        "completed_at": "",
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime | None:
    """An ISO 8601 time (no zone: UTC); anything else reads as "not given"."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes() if path.is_file() else b"").hexdigest()

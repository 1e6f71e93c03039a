"""Typed rows the state store hands back (never SQLAlchemy rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

from agent.core.models import Response

__all__ = [
    "AddResult",
    "CycleRecord",
    "CycleStatus",
    "FileRecord",
    "ResponseConflict",
    "WriteFailure",
]

CycleStatus = Literal["running", "ok", "failed"]


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """One run of a job: when, how it ended, what it counted, why it failed."""

    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    status: CycleStatus
    counts: Mapping[str, int]
    error: str | None
    #: The agent (``host:pid``) that ran it, and its leadership epoch.
    replica: str | None = None
    epoch: int | None = None

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class ResponseConflict:
    """A response whose (source, id) is stored already with different content."""

    response: Response
    stored_hash: str
    new_hash: str


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``add_responses`` did: new ones stored, exact repeats ignored, conflicts refused."""

    added: tuple[Response, ...] = ()
    duplicates: int = 0
    conflicts: tuple[ResponseConflict, ...] = field(default_factory=tuple)


class WriteFailure(NamedTuple):
    """The CRM's last error for a record, and how many writes have failed in a row."""

    code: str | None
    message: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class WrittenSettlement:
    """The last write-back of one CRM object that ran to its end: its field mappings (a
    digest), when it began and when it ended (its records' digests are read by id)."""

    specs: str
    read_from: datetime
    written_to: datetime


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A survey file already ingested, known by its content hash."""

    content_hash: str
    name: str
    processed_at: datetime
    accepted: int
    rejected: int

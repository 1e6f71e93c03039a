"""Stopping at a checkpoint: between two pages read or two batches written, never inside one.

On the running agent each CRM write batch is also claimed against the leadership
epoch right before it goes out (``claim``): a superseded leader writes nothing more.

The cycle steps commit each page with its cursor and record each written batch before
the next goes out, so the gap between two of them is a safe place to stop. The
wrappers here put a check of the stop flag into exactly those gaps: when the agent
is asked to stop, the batch in flight finishes and is recorded, and the next one
raises ``Interrupted`` instead of starting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import (
    Batch,
    CrmConnector,
    CursorAfterWrite,
    FieldProblem,
    FieldUpdate,
    SurveyBatch,
    SurveySource,
    WriteOutcome,
)

__all__ = [
    "Checkpoints",
    "Interrupted",
    "LeadershipLostError",
    "StoppableCrm",
    "StoppableSource",
]

T = TypeVar("T")


class Interrupted(Exception):  # noqa: N818  # a stop request, not an error
    """The agent is stopping; the work done so far is committed and resumes next time."""


class LeadershipLostError(Interrupted):
    """Another agent may lead now: this one stops at the checkpoint and stands by."""


class Checkpoints:
    """What the jobs look at between batches: the stop flag and the leadership."""

    def __init__(
        self,
        stop: threading.Event | None = None,
        still_leader: Callable[[], bool] | None = None,
        claim: Callable[[str], None] | None = None,
    ) -> None:
        self.stop = stop or threading.Event()
        self.still_leader = still_leader
        #: Claims a side effect against the leadership epoch (raises ``FencedError``).
        self.claim = claim

    def check(self) -> None:
        """Raise ``Interrupted`` if the agent was asked to stop or no longer leads."""
        if self.stop.is_set():
            raise Interrupted("stopping at a checkpoint: the work before it is committed")
        if self.still_leader is not None and not self.still_leader():
            raise LeadershipLostError("leadership lost: stopping at a checkpoint")

    def pages(self, pages: Iterator[T]) -> Iterator[T]:
        """``pages``, checking for a stop before fetching each page after the first."""
        for page in pages:
            yield page
            self.check()


class StoppableCrm:
    """A ``CrmConnector`` that stops between pages and before each write batch."""

    def __init__(self, inner: CrmConnector, checkpoints: Checkpoints) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_write_batch = inner.max_write_batch
        self._checkpoints = checkpoints

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        return self._checkpoints.pages(iter(self.inner.read_accounts(cursor)))

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        return self._checkpoints.pages(iter(self.inner.read_contacts(cursor)))

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        return self.inner.check_fields(specs)

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        self._checkpoints.check()
        if self._checkpoints.claim is not None:  # fenced: only the current epoch writes
            self._checkpoints.claim(f"a write batch of {len(updates)} {obj}(s)")
        return self.inner.write(obj, updates)

    def cursor_after_write(self, obj: ObjectKind, cursor: str | None) -> str | None:
        """The inner CRM's cursor past its own write (``CursorAfterWrite``), if it tells."""
        if isinstance(self.inner, CursorAfterWrite):
            return self.inner.cursor_after_write(obj, cursor)
        return None


class StoppableSource:
    """A ``SurveySource`` that stops between pages."""

    def __init__(self, inner: SurveySource, checkpoints: Checkpoints) -> None:
        self.inner = inner
        self.name = inner.name
        self._checkpoints = checkpoints

    def read_responses(self, cursor: str | None) -> Iterator[SurveyBatch]:
        return self._checkpoints.pages(iter(self.inner.read_responses(cursor)))

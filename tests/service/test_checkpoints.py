"""Stopping at a checkpoint: the batch in flight is recorded, the rest resumes next time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import Batch, FieldProblem, FieldUpdate, WriteOutcome
from agent.service.checkpoint import Checkpoints, Interrupted, LeadershipLostError, StoppableCrm
from agent.state.store import StateStore
from agent.sync.cycle import WritebackPlan, run_writeback, sync_crm


class PagedCrm:
    """Accounts in pages of one, each with a cursor; writes in batches of two."""

    name = "files"
    max_write_batch = 2

    def __init__(self, on_write: object = None) -> None:
        self.writes: list[list[str]] = []
        self.on_write = on_write

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        start = int(cursor or 0)
        for i in range(start, 4):
            account = Account(id=f"A{i}", name=f"A{i}", domains=(), revenue=1.0)
            yield Batch(records=[account], cursor=str(i + 1))

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        return iter(())

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        return []

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        self.writes.append([u.record_id for u in updates])
        if callable(self.on_write):
            self.on_write()
        return [WriteOutcome(record_id=u.record_id, ok=True) for u in updates]


def _plan(n: int) -> WritebackPlan:
    updates = [FieldUpdate(record_id=f"A{i}", values={"AX_NPS": float(i)}) for i in range(n)]
    return WritebackPlan({"account": updates})


def test_a_stop_during_write_back_records_the_batch_and_sends_no_more(store: StateStore) -> None:
    checkpoints = Checkpoints()
    inner = PagedCrm(on_write=checkpoints.stop.set)  # the stop arrives while batch 1 is out
    crm = StoppableCrm(inner, checkpoints)
    with pytest.raises(Interrupted):
        run_writeback(store, crm, _plan(5))
    assert inner.writes == [["A0", "A1"]]
    assert set(store.written_values("files", "account")) == {"A0", "A1"}
    checkpoints.stop.clear()
    inner.on_write = None
    run_writeback(store, crm, _plan(5))  # the restart sends the rest
    assert set(store.written_values("files", "account")) == {f"A{i}" for i in range(5)}


def test_a_stop_during_a_paged_read_keeps_the_committed_pages(store: StateStore) -> None:
    checkpoints = Checkpoints()
    crm = StoppableCrm(PagedCrm(), checkpoints)
    store.set_cursor("files", "account", "0")  # incremental: each page commits its cursor
    pages = crm.read_accounts(None)
    next(pages)
    checkpoints.stop.set()
    with pytest.raises(Interrupted):
        next(pages)
    checkpoints.stop.clear()
    seen: list[int] = []

    def stop_after_two() -> bool:
        seen.append(1)
        return len(seen) < 2

    checkpoints.still_leader = stop_after_two
    with pytest.raises(LeadershipLostError):
        sync_crm(store, crm)
    assert store.get_cursor("files", "account") == "2"  # two pages committed with cursors
    checkpoints.still_leader = None
    sync_crm(store, crm)
    assert [a.id for a in store.load_accounts("files")] == ["A0", "A1", "A2", "A3"]


class MovingCrm(PagedCrm):
    """A CRM whose own write moves its read cursor (``CursorAfterWrite``)."""

    def cursor_after_write(self, obj: ObjectKind, cursor: str | None) -> str | None:
        return f"{cursor}+{len(self.writes)}"


def test_the_cursor_past_a_crms_own_write_is_forwarded_and_recorded(store: StateStore) -> None:
    sync_crm(store, StoppableCrm(MovingCrm(), Checkpoints()))
    assert store.get_cursor("files", "account") == "4"
    run_writeback(store, StoppableCrm(MovingCrm(), Checkpoints()), _plan(3))
    assert store.get_cursor("files", "account") == "4+1+2"  # moved with each batch's record
    plain = StoppableCrm(PagedCrm(), Checkpoints())
    assert plain.cursor_after_write("account", "4") is None  # a CRM that cannot tell
    run_writeback(store, plain, _plan(1))
    assert store.get_cursor("files", "account") == "4+1+2"

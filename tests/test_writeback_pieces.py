"""A large write-back batch (the plain-file CRM writes every record at once) records its
confirmations in pieces, the failures and the cursor past the write last: another
writer gets the write lock between pieces, and a crash part-way converges on the next
write-back."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agent.core.contract import ObjectKind
from agent.core.ports import FieldUpdate, WriteOutcome
from agent.state.codec import JsonValue
from agent.state.ops_written import WrittenOps
from agent.state.pieces import PIECE_ROWS
from agent.state.records import WriteFailure
from agent.state.store import StateStore
from agent.sync.cycle import WritebackPlan, run_writeback
from tests.write_lock import (
    count_commits,
    crash_on_second_call,
    probe_between_writes,
    written_part_way,
)

#: Three pieces, the last a short one.
MANY = 2 * PIECE_ROWS + 7


class _OneFileCrm:
    """Every record in one write (as the plain-file CRM), whose own write moves its
    read cursor; one record always fails."""

    max_write_batch = 1_000_000

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        return [
            WriteOutcome(u.record_id, ok=u.record_id != "A00000", error_code="LOCKED")
            for u in updates
        ]

    def cursor_after_write(self, obj: ObjectKind, cursor: str | None) -> str | None:
        return f"{cursor}+write"


def _plan() -> WritebackPlan:
    updates = [FieldUpdate(f"A{i:05d}", {"ax_nps": float(i)}) for i in range(MANY)]
    return WritebackPlan(updates={"account": updates})


def _recorded(
    store: StateStore, crm: str
) -> tuple[dict[str, dict[str, JsonValue]], dict[str, WriteFailure], str | None]:
    return (
        store.written_values(crm, "account"),
        store.failed_records(crm, "account"),
        store.get_cursor(crm, "account"),
    )


def test_a_write_back_crashing_after_a_piece_converges_on_the_next(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for crm in ("files", "whole"):
        store.set_cursor(crm, "account", "v1")
    with count_commits(store) as commits:
        run_writeback(store, _OneFileCrm("whole"), _plan())  # type: ignore[arg-type]
    assert commits == [4]  # three pieces of confirmations, then failures and cursor

    crash = crash_on_second_call(WrittenOps.record_written)
    monkeypatch.setattr(WrittenOps, "record_written", crash)
    with pytest.raises(KeyboardInterrupt):
        run_writeback(store, _OneFileCrm("files"), _plan())  # type: ignore[arg-type]
    monkeypatch.undo()
    written, failed, cursor = _recorded(store, "files")
    assert (len(written), failed, cursor) == (PIECE_ROWS, {}, "v1")  # cursor not moved
    run_writeback(store, _OneFileCrm("files"), _plan())  # type: ignore[arg-type]
    assert _recorded(store, "files") == _recorded(store, "whole")


def test_a_large_write_back_record_lets_another_writer_in_between(sqlite_url: str) -> None:
    with StateStore.open(sqlite_url) as store:
        written = "SELECT count(*) FROM written_values"
        with probe_between_writes(store, written) as probes:
            run_writeback(store, _OneFileCrm("files"), _plan())  # type: ignore[arg-type]
        between = written_part_way(probes, MANY - 1)
        assert between, "the write-back's record was one transaction"
        assert all(p.wrote for p in between)

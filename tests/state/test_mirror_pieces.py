"""A full read of the CRM replaces the mirror piece by piece, the deletions and the
cursor last: another writer gets the write lock between pieces, and a crash part-way
converges on what one uninterrupted sync stores."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import Batch, FieldProblem, FieldUpdate, WriteOutcome
from agent.state.errors import FencedError
from agent.state.leader_epoch import Fence
from agent.state.ops_mirror import MirrorOps
from agent.state.pieces import PIECE_ROWS
from agent.state.schema import leadership
from agent.state.store import StateStore
from agent.sync.cycle import sync_crm
from tests.write_lock import (
    count_commits,
    crash_on_second_call,
    probe_between_writes,
    written_part_way,
)

#: Three pieces, the last a short one.
MANY = 2 * PIECE_ROWS + 7


def _accounts(revenue: float) -> list[Account]:
    return [Account(f"A{i:05d}", f"Account {i}", revenue=revenue) for i in range(MANY)]


class _SnapshotCrm:
    """A CRM without change tracking (as the plain-file CRM): every read is one
    snapshot page of every account, with the version of the data as its cursor."""

    max_write_batch = 100

    def __init__(self, name: str, accounts: list[Account], version: str) -> None:
        self.name, self.accounts, self.version = name, accounts, version

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        if cursor != self.version:
            yield Batch(records=self.accounts, cursor=self.version, snapshot=True)

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        if cursor != self.version:
            yield Batch(records=[], cursor=self.version, snapshot=True)

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        return []

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        return []


def _gone() -> list[Account]:
    """Accounts the previous read had and the next one no longer returns."""
    return [Account(f"Z{i}", f"Gone {i}") for i in range(3)]


def test_a_snapshot_sync_lets_another_writer_in_between_its_pieces(sqlite_url: str) -> None:
    with StateStore.open(sqlite_url) as store:
        sync_crm(store, _SnapshotCrm("files", [*_accounts(1.0), *_gone()], "v1"))
        changed = (
            "SELECT count(*) FROM crm_records WHERE object = 'account' AND payload LIKE '%2.0%'"
        )
        with probe_between_writes(store, changed) as probes:
            sync_crm(store, _SnapshotCrm("files", _accounts(2.0), "v2"))
        between = written_part_way(probes, MANY)
        assert between, "the mirror's replacement was one transaction"
        assert all(p.wrote for p in between), probes
        assert len(store.load_accounts("files")) == MANY
        assert store.get_cursor("files", "account") == "v2"


def test_a_full_read_commits_piece_by_piece_then_deletions_and_cursor(
    store: StateStore,
) -> None:
    store.upsert_records("files", "account", _gone())
    with count_commits(store) as commits:
        assert store.replace_all("files", "account", _accounts(1.0), cursor="v1") == (MANY, 3)
    # the marker that keeps readers out, three pieces, the deletions with the cursor
    assert commits == [5]
    assert store.get_cursor("files", "account") == "v1"
    assert store.load_accounts("files") == _accounts(1.0)


def _mirror(store: StateStore, crm: str) -> tuple[list[Account], int, str | None]:
    return (
        store.load_accounts(crm),
        store.count_records(crm, "account"),
        store.get_cursor(crm, "account"),
    )


def test_a_sync_crashing_after_a_piece_converges_on_the_next(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [*_accounts(1.0), *_gone()]
    for crm in ("files", "whole"):
        sync_crm(store, _SnapshotCrm(crm, before, "v1"))
    sync_crm(store, _SnapshotCrm("whole", _accounts(2.0), "v2"))  # uninterrupted

    monkeypatch.setattr(MirrorOps, "stamp_records", crash_on_second_call(MirrorOps.stamp_records))
    with pytest.raises(KeyboardInterrupt):
        sync_crm(store, _SnapshotCrm("files", _accounts(2.0), "v2"))
    monkeypatch.undo()
    accounts, live, cursor = _mirror(store, "files")
    # The first piece is in, nothing is deleted yet, the cursor is the old one.
    assert sum(a.revenue == 2.0 for a in accounts) == PIECE_ROWS
    assert (live, cursor) == (MANY + 3, "v1")
    sync_crm(store, _SnapshotCrm("files", _accounts(2.0), "v2"))  # reads it all again
    assert _mirror(store, "files") == (*_mirror(store, "whole")[:2], "v2")


def test_a_superseded_leader_commits_no_piece_of_its_read(store: StateStore) -> None:
    old, new = Fence(store.engine, pid=1), Fence(store.engine, pid=2)
    assert old.take(holds_lock=False)
    store.fence = old
    store.replace_all("files", "account", _accounts(1.0), cursor="v1")
    with store.engine.begin() as conn:  # the lease runs out; another agent leads
        conn.execute(update(leadership).values(lease_expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
    assert new.take(holds_lock=False)
    with pytest.raises(FencedError):
        store.replace_all("files", "account", _accounts(2.0), cursor="v2")
    store.fence = None
    assert _mirror(store, "files") == (_accounts(1.0), MANY, "v1")

"""A cycle's history record commits in pieces, the portfolio point last: another writer
gets the write lock between pieces, and a record interrupted after a piece, recorded
again, stores exactly what one uninterrupted record stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from agent.core.compute import compute_document
from agent.core.document import MetricsDocument
from agent.state import history as history_module
from agent.state import pieces, schema
from agent.state.history import HistoryRepo
from agent.state.store import StateStore
from tests.core_builders import account
from tests.write_lock import (
    Probe,
    count_commits,
    crash_on_second_call,
    probe_between_writes,
    written_part_way,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
#: Rows per piece here: the pieces' logic, not their size, is under test.
PIECE_ROWS = 40
#: Three pieces, the last a short one.
MANY = 2 * PIECE_ROWS + 7


@pytest.fixture(autouse=True)
def _small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pieces, "PIECE_ROWS", PIECE_ROWS)


def _document(as_of: datetime, revenue: float) -> MetricsDocument:
    """Every account's revenue differs from the other document's: a row each."""
    accounts = [account(f"A{i:05d}", revenue + i) for i in range(MANY)]
    return compute_document(accounts, [], [], as_of=as_of)


def _stored(store: StateStore, crm: str) -> tuple[Any, ...]:
    repo = HistoryRepo(store)
    h = schema.history_heads.c
    with store.reading() as tx:
        heads = sorted(
            tx.connection.execute(select(h.account_id, h.as_of, h.digest).where(h.crm == crm))
        )
    return repo.accounts(crm), repo.portfolio(crm), [tuple(r) for r in heads]


def test_a_record_interrupted_after_a_piece_and_recorded_again_stores_the_same(
    state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, later = _document(NOW, 1000.0), _document(LATER, 2000.0)
    with StateStore.open(state_url) as store:
        repo = HistoryRepo(store)
        for crm in ("files", "whole"):
            repo.record(crm, first)
        with count_commits(store) as commits:
            whole = repo.record("whole", later)
        assert (whole.accounts, whole.portfolio) == (MANY, 1)
        assert commits == [4]  # three pieces of rows and heads, then the portfolio point

        advance = history_module._advance_heads
        monkeypatch.setattr(history_module, "_advance_heads", crash_on_second_call(advance))
        with pytest.raises(KeyboardInterrupt):
            repo.record("files", later)
        monkeypatch.setattr(history_module, "_advance_heads", advance)
        # The first piece is in (each row with its head); the point is not complete.
        assert not repo.has_point("files", LATER)
        rows = repo.accounts("files", since=LATER)
        assert len(rows) == PIECE_ROWS
        heads = {r[0]: r[1] for r in _stored(store, "files")[2]}
        assert sorted(a for a, at in heads.items() if at == LATER) == sorted(rows)

        again = repo.record("files", later)
        assert (again.accounts, again.portfolio) == (MANY - PIECE_ROWS, 1)
        assert repo.record("files", later).accounts == 0
        assert _stored(store, "files") == _stored(store, "whole")


def test_a_record_lets_another_writer_in_between_its_pieces(sqlite_url: str) -> None:
    with StateStore.open(sqlite_url) as store:
        repo = HistoryRepo(store)
        repo.record("files", _document(NOW, 1000.0))
        added = f"SELECT count(*) - {MANY} FROM history_accounts"  # a constant
        with probe_between_writes(store, added) as probes:
            assert repo.record("files", _document(LATER, 2000.0)).accounts == MANY
        between = written_part_way(probes, MANY)
        assert between, "the history record was one transaction"
        assert all(p.wrote for p in between)
        assert probes[-1] == Probe(MANY, wrote=True)  # the portfolio point, last

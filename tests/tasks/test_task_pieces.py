"""A cycle's new tasks are recorded in pieces: another writer gets the write lock between
pieces, and a recording interrupted after a piece converges on the next cycle's: no
task lost, none recorded twice."""

from __future__ import annotations

import pytest

from agent.state.dialect import bulk_write
from agent.state.pieces import PIECE_ROWS
from agent.state.store import StateStore
from agent.tasks import repo as repo_module
from agent.tasks.repo import TaskRepo
from tests.tasks.planned import planned
from tests.write_lock import (
    count_commits,
    crash_on_second_call,
    probe_between_writes,
    written_part_way,
)

#: Three pieces, the last a short one.
MANY = 2 * PIECE_ROWS + 7


def _outbox(repo: TaskRepo) -> list[tuple[str, str, int]]:
    return sorted((t.key, t.status, t.attempts) for t in repo.rows("pending", limit=10 * MANY))


def test_a_recording_interrupted_after_a_piece_converges_on_the_next(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = planned(MANY)
    whole = TaskRepo(store.engine, "whole")
    with count_commits(store) as commits:
        assert whole.record(planned(MANY, prefix="W")) == MANY
    assert commits == [3]

    repo = TaskRepo(store.engine, "files")
    monkeypatch.setattr(repo_module, "bulk_write", crash_on_second_call(bulk_write))
    with pytest.raises(KeyboardInterrupt):
        repo.record(tasks)
    monkeypatch.undo()
    assert len(_outbox(repo)) == PIECE_ROWS
    # The next cycle plans the same tasks: the recorded ones are known.
    assert repo.known(t.key for t in tasks) == {t.key for t in tasks[:PIECE_ROWS]}
    assert repo.record(tasks) == MANY - PIECE_ROWS
    assert repo.record(tasks) == 0
    assert [(k.split("/R")[1], s, a) for k, s, a in _outbox(repo)] == [
        (k.split("/W")[1], s, a) for k, s, a in _outbox(whole)
    ]


def test_recording_tasks_lets_another_writer_in_between_its_pieces(sqlite_url: str) -> None:
    with StateStore.open(sqlite_url) as store:
        repo = TaskRepo(store.engine, "files")
        with probe_between_writes(store, "SELECT count(*) FROM crm_tasks") as probes:
            assert repo.record(planned(MANY)) == MANY
        between = written_part_way(probes, MANY)
        assert between, "the tasks were recorded in one transaction"
        assert all(p.wrote for p in between)

"""A cycle's new tasks are recorded, and many tasks marked, in pieces: another writer gets
the write lock between pieces, and a recording interrupted after a piece converges on
the next cycle's: no task lost, none recorded twice. Reads take no write lock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from agent.state.dialect import bulk_write
from agent.state.pieces import PIECE_ROWS
from agent.state.store import StateStore
from agent.tasks import repo as repo_module
from agent.tasks.repo import TaskRepo
from tests.tasks.planned import NOW, planned
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


def test_marking_many_tasks_commits_in_pieces(store: StateStore) -> None:
    repo = TaskRepo(store.engine, "files")
    tasks = planned(MANY)
    repo.record(tasks)
    keys = [t.key for t in tasks]
    with count_commits(store) as commits:
        repo.mark_attempt(keys, {keys[0]: ("owner@vendor.example", "005A")})
    assert commits == [3]
    pending = {t.key: t for t in repo.rows("pending", limit=10 * MANY)}
    assert {t.attempts for t in pending.values()} == {1}
    assert (pending[keys[0]].owner_email, pending[keys[0]].owner_id) == (
        "owner@vendor.example",
        "005A",
    )
    assert (pending[keys[1]].owner_email, pending[keys[1]].owner_id) == (None, None)
    repo.mark_error({keys[1]: "x" * 5000})
    assert len(repo.get(keys[1]).last_error or "") == 2000  # type: ignore[union-attr]
    repo.mark_created({key: f"T{i}" for i, key in enumerate(keys)}, NOW)
    assert repo.counts() == {"open": MANY}
    assert repo.get(keys[-1]).crm_task_id == f"T{MANY - 1}"  # type: ignore[union-attr]
    repo.request_completion({keys[0]: (NOW, "Slack")})
    assert [(t.key, t.loop_closed_at, t.closed_by) for t in repo.to_push()] == [
        (keys[0], NOW, "Slack")
    ]


def test_reading_the_task_outbox_takes_no_write_lock(sqlite_url: str) -> None:
    """On SQLite every transaction but a read-only one takes the write lock as it begins:
    a read of 20,000 tasks held it (and kept a webhook's answer out) for 0.3 s."""
    with StateStore.open(sqlite_url) as store:
        repo = TaskRepo(store.engine, "files")
        key = planned(1)[0].key
        repo.record(planned(1))
        statements: list[str] = []

        def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        event.listen(store.engine, "before_cursor_execute", seen)
        try:
            repo.known([key])
            repo.recent(["new-detractor"])
            repo.rows("pending")
            repo.get(key)
            repo.by_task_ids(["T1"])
            repo.closed_elsewhere(["survey/R0"])
            repo.to_push()
            repo.figures(NOW, timedelta(hours=48))
            repo.counts()
        finally:
            event.remove(store.engine, "before_cursor_execute", seen)
        assert "BEGIN IMMEDIATE" not in statements
        assert statements.count("BEGIN DEFERRED") == 9

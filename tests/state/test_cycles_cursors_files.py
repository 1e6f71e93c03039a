"""Cycle log, cursors, ingested files and transactions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.config.logging import register_secret
from agent.core.models import Account
from agent.state.store import StateStore


def test_a_cycle_is_logged_from_start_to_finish(store: StateStore) -> None:
    before = datetime.now(UTC)
    cycle_id = store.start_cycle("crm_sync")
    running = store.last_cycle("crm_sync")
    assert running is not None
    assert (running.id, running.status, running.finished_at) == (cycle_id, "running", None)
    assert running.started_at >= before.replace(microsecond=0)
    assert running.started_at.tzinfo is not None

    store.finish_cycle(cycle_id, "ok", {"accounts": 250, "contacts": 2500})
    done = store.last_cycle("crm_sync")
    assert done is not None
    assert done.status == "ok"
    assert done.counts == {"accounts": 250, "contacts": 2500}
    assert done.finished_at is not None
    assert done.finished_at >= done.started_at
    assert done.seconds is not None
    assert done.seconds >= 0
    assert done.error is None


def test_recent_cycles_are_newest_first_and_filterable(store: StateStore) -> None:
    ids = [store.start_cycle(job) for job in ("sync", "writeback", "sync", "alerts")]
    store.finish_cycle(ids[1], "failed", {}, "CRM said no")
    assert [c.id for c in store.recent_cycles(3)] == [ids[3], ids[2], ids[1]]
    assert [c.id for c in store.recent_cycles(10, job="sync")] == [ids[2], ids[0]]
    failed = store.last_cycle("writeback")
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "CRM said no")
    assert store.last_cycle("never-ran") is None


def test_finishing_a_cycle_checks_status_and_id(store: StateStore) -> None:
    cycle_id = store.start_cycle("sync")
    with pytest.raises(ValueError, match="ok or failed"):
        store.finish_cycle(cycle_id, "running", {})
    with pytest.raises(KeyError, match="no cycle with id"):
        store.finish_cycle(cycle_id + 1000, "ok", {})


def test_a_cycle_error_never_stores_a_registered_secret(store: StateStore) -> None:
    register_secret("tok-cycle-8c1f2a")
    cycle_id = store.start_cycle("sync")
    store.finish_cycle(cycle_id, "failed", {}, "auth failed for token tok-cycle-8c1f2a")
    stored = store.last_cycle("sync")
    assert stored is not None
    assert stored.error == "auth failed for token [REDACTED]"


def test_cursors_are_per_source_and_stream_and_move(store: StateStore) -> None:
    assert store.get_cursor("salesforce", "account") is None
    store.set_cursor("salesforce", "account", "2024-05-01T00:00:00Z")
    store.set_cursor("salesforce", "contact", "c1")
    store.set_cursor("hubspot", "account", "h1")
    store.set_cursor("salesforce", "account", "2024-06-01T00:00:00Z")
    assert store.get_cursor("salesforce", "account") == "2024-06-01T00:00:00Z"
    assert store.all_cursors() == {
        ("salesforce", "account"): "2024-06-01T00:00:00Z",
        ("salesforce", "contact"): "c1",
        ("hubspot", "account"): "h1",
    }
    store.clear_cursor("salesforce", "contact")
    assert store.get_cursor("salesforce", "contact") is None


def test_a_cursor_commits_together_with_its_data(store: StateStore) -> None:
    with store.transaction() as tx:
        tx.upsert_records("salesforce", "account", [Account("a1", "Acme")])
        tx.set_cursor("salesforce", "account", "page-1")
    with pytest.raises(RuntimeError, match="crash"):
        _crash_after_page_two(store)
    assert store.get_cursor("salesforce", "account") == "page-1"
    assert [a.id for a in store.load_accounts("salesforce")] == ["a1"]


def _crash_after_page_two(store: StateStore) -> None:
    with store.transaction() as tx:
        tx.upsert_records("salesforce", "account", [Account("a2", "Globex")])
        tx.set_cursor("salesforce", "account", "page-2")
        raise RuntimeError("crash before commit")


def test_a_file_is_remembered_by_content_hash(store: StateStore) -> None:
    digest = "ab" * 32
    assert not store.file_seen(digest)
    assert store.mark_file(digest, "drop/responses-1.csv", accepted=98, rejected=2)
    assert store.file_seen(digest)
    assert not store.mark_file(digest, "drop/copy-of-responses-1.csv", accepted=0, rejected=0)
    record = store.get_file(digest)
    assert record is not None
    assert (record.name, record.accepted, record.rejected) == ("drop/responses-1.csv", 98, 2)
    assert store.get_file("cd" * 32) is None


def test_a_read_transaction_sees_committed_data(store: StateStore) -> None:
    store.set_cursor("files", "responses", "7")
    with store.reading() as tx:
        assert tx.get_cursor("files", "responses") == "7"


def test_old_finished_cycles_are_pruned_running_ones_kept(store: StateStore) -> None:
    old_done = store.start_cycle("crm_sync")
    store.finish_cycle(old_done, "ok", {})
    old_running = store.start_cycle("writeback")
    cutoff = datetime.now(UTC)
    recent = store.start_cycle("alerts")
    store.finish_cycle(recent, "failed", {}, "boom")
    assert store.prune_cycles(cutoff) == 1
    left = {c.id for c in store.recent_cycles(10)}
    assert left == {old_running, recent}

"""A cycle records history incrementally: it compares (and reads the last rows of) only
the accounts whose figures moved since the last record, and stores exactly what
comparing every account stores."""

from __future__ import annotations

import csv
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import agent.service.runtime as runtime_module
from agent.config.settings import HistorySettings
from agent.core.document import MetricsDocument
from agent.service.process import AgentProcess
from agent.state import schema
from agent.state.history import record_history
from agent.state.store import StateStore
from tests.service.agentkit import agent_settings, build_agent

Recorded = tuple[MetricsDocument, frozenset[str] | None]


def _append(path: Path, row: dict[str, str]) -> None:
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.DictWriter(handle, header).writerow({k: row.get(k, "") for k in header})


def _answer(folder: Path, response_id: str, email: str) -> None:
    when = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds")
    _append(
        folder / "responses.csv",
        {"response_id": response_id, "email": email, "score": "2", "submitted_at": when},
    )


def _history(counts_of: AgentProcess) -> dict[str, int]:
    results = {r.job: r for r in counts_of.run_once()}
    assert results["writeback"].ok, results["writeback"].error
    return {k: v for k, v in results["writeback"].counts.items() if k.startswith("history_")}


def _tables(store: StateStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every history row, in a stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.reading() as tx:
        for table in (schema.history_accounts, schema.history_heads, schema.history_portfolio):
            rows = tx.connection.execute(select(table)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def test_a_cycle_compares_only_the_accounts_that_changed_and_stores_what_a_full_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = agent_settings(tmp_path)
    folder = settings.files.path
    assert folder is not None
    recorded: list[Recorded] = []
    failing: list[bool] = []

    def spy(
        store: StateStore,
        crm: str,
        document: MetricsDocument,
        history: HistorySettings,
        changed_accounts: Collection[str] | None = None,
    ) -> dict[str, int]:
        if failing and failing.pop():
            raise RuntimeError("the database went away")
        chosen = None if changed_accounts is None else frozenset(changed_accounts)
        recorded.append((document, chosen))
        return record_history(store, crm, document, history, changed_accounts)

    monkeypatch.setattr(runtime_module, "record_history", spy)
    agent = build_agent(settings)  # one process: its figures stay in memory between cycles
    try:
        first = _history(agent)
        assert recorded[-1][1] is None  # a full computation: every account is compared
        assert first["history_compared"] == first["history_accounts"] == 6
        # every account's record now holds what was written back: all are recomputed
        assert _history(agent)["history_accounts"] == 0

        _answer(folder, "new-2", "p1@acct2.example")  # A2 had no answer: its figures move
        second = _history(agent)
        assert recorded[-1][1] == {"A2"}
        assert (second["history_compared"], second["history_accounts"]) == (1, 1)
        # A2's new written fields are the agent's own write: the CRM is not read again
        quiet = _history(agent)
        assert recorded[-1][1] == frozenset()
        assert (quiet["history_compared"], quiet["history_accounts"]) == (0, 0)

        _answer(folder, "new-4", "p1@acct4.example")
        failing.append(True)  # this cycle's history is not stored ...
        failed = {r.job: r for r in agent.run_once()}["writeback"]
        assert not failed.ok
        _answer(folder, "new-6", "p1@acct6.example")
        after = _history(agent)  # ... so the next one compares its accounts too
        assert recorded[-1][1] == {"A4", "A6"}
        assert (after["history_compared"], after["history_accounts"]) == (2, 2)
        incremental = _tables(agent.store)
    finally:
        agent.store.close()
        agent.leadership.release()

    full = StateStore.open(f"sqlite:///{tmp_path / 'full.db'}")
    try:  # the same documents, every account compared each time
        for document, _ in recorded:
            record_history(full, "files", document, settings.history)
        assert _tables(full) == incremental
    finally:
        full.close()

"""A cycle records history after computing its figures; ``history.enabled`` switches it off."""

from __future__ import annotations

from pathlib import Path

from agent.state.history import HistoryRepo
from tests.service.agentkit import agent_settings, build_agent


def test_each_cycle_stores_a_portfolio_point_and_only_changed_accounts(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    agent = build_agent(settings)
    first = {r.job: r for r in agent.run_once()}["writeback"].counts
    assert first["history_portfolio"] == 1
    assert first["history_accounts"] > 0
    agent = build_agent(settings)  # one pass releases the leadership: a new agent leads
    second = {r.job: r for r in agent.run_once()}["writeback"].counts
    assert second["history_portfolio"] == 1
    assert second["history_accounts"] == 0  # nothing changed between the two cycles
    repo = HistoryRepo(agent.store)
    assert len(repo.portfolio("files")) == 2
    stored = sum(len(rows) for rows in repo.accounts("files").values())
    assert stored == first["history_accounts"]


def test_history_can_be_switched_off(tmp_path: Path) -> None:
    agent = build_agent(agent_settings(tmp_path, history={"enabled": False}))
    counts = {r.job: r for r in agent.run_once()}["writeback"].counts
    assert "history_portfolio" not in counts
    assert HistoryRepo(agent.store).portfolio("files") == []


def test_a_dry_run_records_no_history(tmp_path: Path) -> None:
    agent = build_agent(agent_settings(tmp_path), dry_run=True)
    agent.run_once()
    assert HistoryRepo(agent.store).portfolio("files") == []

"""``health_trend_30d`` and ``health_status_since`` written to the CRM from the history."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.config.settings import ConfigError, Settings, load_settings
from agent.sources.files import written_file
from agent.state.history import HistoryRepo
from tests.service.agentkit import agent_settings, build_agent


def _written(folder: Path) -> dict[str, dict[str, str]]:
    with written_file(folder, "account").open(encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_fields_are_opt_in_and_need_the_history(tmp_path: Path) -> None:
    plain = {s.logical for s in Settings().fields.specs()}
    assert "health_trend_30d" not in plain
    on = Settings.model_validate({"history": {"write_back": True}})
    chosen = {s.logical: s for s in on.fields.specs()}
    assert chosen["health_trend_30d"].kind == "number"
    assert chosen["health_status_since"].kind == "datetime"
    config = tmp_path / "ax.yaml"
    config.write_text("history:\n  enabled: false\n  write_back: true\n")
    with pytest.raises(ConfigError, match="write_back needs the history"):
        load_settings(config)


def test_trend_and_status_since_are_written_and_only_when_they_change(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path, history={"write_back": True})
    agent = build_agent(settings)
    first = {r.job: r for r in agent.run_once()}["writeback"].counts
    assert first["written"] > 0
    rows = _written(tmp_path / "crm")
    (as_of,) = [at for at, _ in HistoryRepo(agent.store).portfolio("files")]
    since = {_instant(r["health_status_since"]) for r in rows.values()}
    assert since == {as_of.replace(microsecond=0)}  # the history starts with this cycle
    assert all(not r.get("health_trend_30d") for r in rows.values())  # nothing 30 days back
    agent = build_agent(settings)  # one pass releases the leadership: a new agent leads
    again = {r.job: r for r in agent.run_once()}["writeback"].counts
    assert again["planned_records"] == 0  # nothing changed: nothing written

    # A point 30 days back with a lower health score: the trend appears, once.
    document = agent.runtime.computed().document  # the last cycle's figures
    past = replace(
        document,
        as_of=as_of - timedelta(days=31),
        accounts=[
            replace(a, health_score=None if a.health_score is None else a.health_score - 12.0)
            for a in document.accounts
        ],
    )
    HistoryRepo(agent.store).record("files", past)
    agent = build_agent(settings)  # one pass releases the leadership: a new agent leads
    third = {r.job: r for r in agent.run_once()}["writeback"].counts
    scored = [a for a in document.accounts if a.health_score is not None]
    assert third["planned_records"] == len(scored)
    rows = _written(tmp_path / "crm")
    for metrics in scored:
        assert rows[metrics.id]["health_trend_30d"] == "12.0"
    since = {
        datetime.fromisoformat(r["health_status_since"].replace("Z", "+00:00"))
        for r in rows.values()
    }
    assert len(since) == 1  # the status held since the first cycle: unchanged

"""The running agent's document lists the plain-file CRM's rejected and dropped rows, as
``metrics`` does for the same folder, and still does after a restart (files unchanged)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.config.settings import Settings
from agent.core.contract import MetricsConfig
from agent.service.process import AgentProcess
from agent.sources.folder import compute_folder
from tests.service.agentkit import agent_settings, build_agent


def _append(path: Path, row: dict[str, str]) -> None:
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.DictWriter(handle, header).writerow({k: row.get(k, "") for k in header})


def _close(agent: AgentProcess) -> None:
    agent.store.close()
    agent.leadership.release()


def _settings(tmp_path: Path) -> tuple[Settings, Path]:
    settings = agent_settings(tmp_path)
    assert settings.files.path is not None
    return settings, settings.files.path


def _cycle(agent: AgentProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    """One cycle's document, and what ``metrics`` says of the folder at the cycle's instant."""
    try:
        results = agent.run_once()
        assert all(r.ok for r in results), [r.error for r in results]
        document = agent.runtime.computed().document.to_json_obj()
        folder = agent.settings.files.path
        assert folder is not None
        expected = compute_folder(
            folder, as_of=agent.runtime.cycle_at, config=MetricsConfig()
        ).document.to_json_obj()
    finally:
        _close(agent)
    return document, expected


def _left_out(agent: AgentProcess) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    doc = _cycle(agent)[0]
    return doc["rejected"], doc["dropped"]


def test_the_cycle_document_carries_the_crm_files_rejected_and_dropped_rows(
    tmp_path: Path,
) -> None:
    settings, folder = _settings(tmp_path)
    _append(folder / "accounts.csv", {"id": "ACC-BAD", "name": "Bad", "revenue": "lots"})
    _append(folder / "contacts.csv", {"id": "C-NOMAIL", "account_id": "A1", "email": ""})
    _append(folder / "contacts.csv", {"id": "C-ORPHAN", "account_id": "ACC-BAD", "email": "o@x.io"})

    rejected, dropped = _left_out(build_agent(settings))

    assert {"source": "accounts.csv", "reason": "invalid_revenue", "value": "lots"}.items() <= (
        next(r for r in rejected if r["source"] == "accounts.csv").items()
    )
    reasons = {(d["source"], d["reason"]) for d in dropped}
    assert ("accounts.csv", "invalid_revenue") in reasons
    assert ("contacts.csv", "missing_email") in reasons
    assert ("contacts.csv", "account_rejected") in reasons
    as_of = build_agent(settings)  # the same rows as `metrics` lists for the folder
    try:
        expected = compute_folder(
            folder, as_of=as_of.runtime.cycle_at, config=MetricsConfig()
        ).document.to_json_obj()
    finally:
        _close(as_of)
    assert dropped == expected["dropped"]
    assert rejected == expected["rejected"]

    again = _left_out(build_agent(settings))  # a restart: the files are not read for records
    assert again == (rejected, dropped)


def test_rejected_answers_stay_in_the_document_of_every_cycle_and_after_a_restart(
    tmp_path: Path,
) -> None:
    settings, folder = _settings(tmp_path)
    _append(
        folder / "responses.csv",
        {"response_id": "BAD-1", "email": "x@y.io", "score": "eleven", "submitted_at": "2025"},
    )
    agent = build_agent(settings)
    try:
        assert all(r.ok for r in agent.run_once())
        first = agent.runtime.computed().document.to_json_obj()["rejected"]
        assert all(r.ok for r in agent.run_once())  # the same process, files unchanged
        second = agent.runtime.computed().document.to_json_obj()["rejected"]
    finally:
        _close(agent)
    restarted = _left_out(build_agent(settings))[0]
    bad = {"source": "responses.csv", "reason": "invalid_score", "value": "eleven"}
    assert any(bad.items() <= r.items() for r in first)
    assert first == second == restarted


def _answer(folder: Path, response_id: str, email: str) -> None:
    when = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds")
    _append(
        folder / "responses.csv",
        {"response_id": response_id, "email": email, "score": "4", "submitted_at": when},
    )


def _unmatched(agent: AgentProcess) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The cycle's unmatched answers, and those of ``metrics`` on the folder at its instant."""
    document, expected = _cycle(agent)
    return document["unmatched"], expected["unmatched"]


def test_the_cycle_reports_answers_of_a_rejected_account_as_account_rejected(
    tmp_path: Path,
) -> None:
    settings, folder = _settings(tmp_path)
    bad = {"id": "ACC-BAD", "name": "Bad", "domain": "bad.example", "revenue": "lots"}
    _append(folder / "accounts.csv", bad)
    _append(folder / "contacts.csv", {"id": "C-BAD", "account_id": "ACC-BAD", "email": "o@x.io"})
    _answer(folder, "by-contact", "o@x.io")  # its contact answered
    _answer(folder, "by-domain", "someone@bad.example")  # its domain answered
    _answer(folder, "stranger", "who@nowhere.example")

    unmatched, expected = _unmatched(build_agent(settings))

    reasons = {u["response_id"]: u["reason"] for u in unmatched}
    assert reasons == {
        "by-contact": "account_rejected",
        "by-domain": "account_rejected",
        "stranger": "no_match",
    }
    assert unmatched == expected  # as `metrics --crm-dir` says for the same folder
    assert _unmatched(build_agent(settings)) == (unmatched, expected)  # after a restart

    # the account is fixed: its answers count, only the stranger is left unmatched
    agent = build_agent(settings)
    try:
        agent.run_once()  # the figures are in memory now: the next cycle is incremental
    except BaseException:
        _close(agent)
        raise
    rows = (folder / "accounts.csv").read_text(encoding="utf-8")
    (folder / "accounts.csv").write_text(rows.replace(",lots,", ",5000,"), encoding="utf-8")
    unmatched, expected = _unmatched(agent)
    assert [u["response_id"] for u in unmatched] == ["stranger"]
    assert unmatched == expected

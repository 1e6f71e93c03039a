"""The running agent's document lists the plain-file CRM's rejected and dropped rows, as
``metrics`` does for the same folder, and still does after a restart (files unchanged)."""

from __future__ import annotations

import csv
from pathlib import Path

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


def _left_out(agent: AgentProcess) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    try:
        results = agent.run_once()
        assert all(r.ok for r in results), [r.error for r in results]
        doc = agent.runtime.computed().document.to_json_obj()
    finally:
        _close(agent)
    return doc["rejected"], doc["dropped"]


def test_the_cycle_document_carries_the_crm_files_rejected_and_dropped_rows(
    tmp_path: Path,
) -> None:
    settings = agent_settings(tmp_path)
    folder = settings.files.path
    assert folder is not None
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
    assert [r for r in rejected if r["source"] != "responses.csv"] == [
        r for r in expected["rejected"] if r["source"] != "responses.csv"
    ]

    again = _left_out(build_agent(settings))  # a restart: the files are not read for records
    assert again == (rejected, dropped)

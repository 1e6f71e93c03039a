"""``ax-agent demo`` with CRM tasks: one per open detractor of the window, none twice,
and a task marked completed in ``ax_tasks.csv`` closes its loop at the next run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.core.contract import MetricsConfig
from agent.core.timeutil import parse_instant
from agent.sources.folder import compute_folder

runner = CliRunner()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _open_detractors(crm: Path, account_id: str) -> str:
    return next(r for r in _rows(crm / "ax_accounts.csv") if r["id"] == account_id)[
        "open_detractors"
    ]


def test_demo_creates_tasks_once_and_a_completed_task_closes_its_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    crm = tmp_path / "ax-demo" / "crm"
    tasks = _rows(crm / "ax_tasks.csv")
    as_of = parse_instant((crm / "as_of.txt").read_text(encoding="utf-8"))
    computed = compute_folder(crm, as_of=as_of, config=MetricsConfig(), with_matches=True)
    window = as_of.timestamp() - 14 * 86_400  # the new-detractor rule's max_age
    expected = sorted(
        f"new-detractor:{m.response.source}/{m.response.response_id}"
        for m in computed.matches
        if m.counted
        and m.response.score <= 6
        and m.response.loop_closed_at is None
        and m.response.submitted_at.timestamp() >= window
    )
    detractor_tasks = sorted(
        t["alert_key"] for t in tasks if t["alert_key"].startswith("new-detractor:")
    )
    assert detractor_tasks == expected
    assert expected
    upsell = {a.id for a in computed.document.accounts if a.upsell_candidate}
    promoter_accounts = {
        t["account_id"] for t in tasks if t["alert_key"].startswith("promoter-activation:")
    }
    assert promoter_accounts
    assert promoter_accounts <= upsell
    assert f"Created {len(tasks)} task(s)" in first.stdout

    second = runner.invoke(app, ["demo"])
    assert second.exit_code == 0, second.output
    assert "No new tasks" in second.stdout
    assert _rows(crm / "ax_tasks.csv") == tasks

    task = next(t for t in tasks if t["alert_key"].startswith("new-detractor:"))
    before = int(_open_detractors(crm, task["account_id"]))
    for row in tasks:
        if row["id"] == task["id"]:
            row["status"] = "completed"
    with (crm / "ax_tasks.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(tasks[0]))
        writer.writeheader()
        writer.writerows(tasks)

    third = runner.invoke(app, ["demo"])
    assert third.exit_code == 0, third.output
    assert "1 task(s) marked completed in ax_tasks.csv: 1 detractor loop(s) closed" in third.stdout
    assert int(_open_detractors(crm, task["account_id"])) == before - 1
    assert "completed 1, within the SLA" in third.stdout  # the task closed-loop rate
    done = f"Tasks in the CRM: {len(tasks)}, completed 1 "
    assert done in third.stdout  # the document's task section
    assert "No new tasks" in third.stdout

"""The CRM task figures in the report (a section of cards), the weekly digest's text and
its Slack attachment, and ``ax-agent report`` over an agent that keeps tasks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.alerts.compose import chart_attachment
from agent.cli import app
from agent.core.document import MetricsDocument, TaskFigures
from agent.report import ReportOptions, build_report
from agent.report.digest import digest_text
from tests.report_support import by_id, load_fixture, parse_strict, text_of
from tests.service.agentkit import agent_settings, build_agent

TASKS = TaskFigures(
    crm="salesforce",
    recorded=12,
    pending=2,
    created=10,
    open=4,
    overdue=1,
    completed=6,
    completed_in_time=5,
    completed_in_crm=4,
    detractor_tasks=8,
    detractor_tasks_completed=5,
    detractor_tasks_closed_in_sla=3,
    closed_loop_rate=3 / 8,
)


def _doc(tasks: TaskFigures | None = TASKS) -> MetricsDocument:
    return replace(load_fixture("three-accounts").doc, tasks=tasks)


def _cards(page: str) -> dict[str, str]:
    section = by_id(parse_strict(page), "tasks")
    return {
        str(card.get("data-key")): text_of(card)
        for card in section.iter("div")
        if card.get("class") == "task-card"
    }


def test_the_report_shows_the_task_cards_and_keeps_eight_headlines() -> None:
    page = build_report(_doc(), options=ReportOptions())
    tree = parse_strict(page)

    assert _cards(page) == {
        "tasks.created": "Tasks created 10 2 waiting to be created",
        "tasks.completed": "Completed 6 4 by their owner in the CRM",
        "tasks.completed_in_time": "Completed in time 5 by their due time",
        "tasks.open": "Open 4 in the owners' task lists",
        "tasks.overdue": "Overdue 1 open past their due time",
        "tasks.closed_loop_rate": "Task closed-loop rate 37.5 % 3 of 8 detractor tasks in time",
    }
    rate = next(e for e in tree.iter("div") if e.get("data-key") == "tasks.closed_loop_rate")
    assert float(rate.get("data-value", "nan")) == 3 / 8  # unrounded, as in the document
    lead = text_of(by_id(tree, "tasks").find("p"))  # type: ignore[arg-type]
    assert "in salesforce" in lead
    assert "within 48 hours of the answer, out of every detractor task" in lead
    headlines = [e for e in tree.iter("div") if e.get("class") == "headline"]
    assert len(headlines) == 8  # the task rate has its own section, not a ninth card


def test_a_document_without_tasks_has_no_task_section() -> None:
    page = build_report(_doc(None), options=ReportOptions())
    assert not [e for e in parse_strict(page).iter() if e.get("id") == "tasks"]


def test_the_digest_text_ends_with_the_task_closed_loop_rate() -> None:
    lines = digest_text(_doc()).splitlines()
    assert lines[-2] == "• At-risk revenue: *600,000* (1 account at risk)"
    assert lines[-1] == (
        "• Task closed-loop rate: *37.5 %* (3 of 8 detractor tasks in time; 4 open, 1 overdue)"
    )
    assert len(digest_text(_doc(None)).splitlines()) == len(lines) - 1


def test_the_digest_attachment_carries_the_task_rate_to_slack() -> None:
    headlines = chart_attachment("driver_chart", _doc()).headlines
    assert [h.key for h in headlines][-1] == "tasks.closed_loop_rate"
    assert headlines[-1].value == 3 / 8
    assert len(headlines) == 9  # Slack shows up to ten fields in a message
    assert "tasks.closed_loop_rate" not in {
        h.key for h in chart_attachment("driver_chart", _doc(None)).headlines
    }


@pytest.fixture
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AX_CONFIG", "AX_SECRETS_FILE", "AX_STATE_URL", "AX_CRM"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("_isolated")
def test_report_of_the_configured_crm_shows_the_agents_tasks(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    agent = build_agent(settings)
    try:
        assert all(r.ok for r in agent.run_once())
    finally:
        agent.store.close()
        agent.leadership.release()
    config = tmp_path / "ax.yaml"
    config.write_text(
        f"crm: files\nfiles: {{path: '{settings.files.path}'}}\n"
        f"state_url: '{settings.state_url}'\n",
        encoding="utf-8",
    )
    out = tmp_path / "report.html"

    result = CliRunner().invoke(app, ["report", "--config", str(config), "--out", str(out)])

    assert result.exit_code == 0, result.output
    cards = _cards(out.read_text(encoding="utf-8"))
    assert cards["tasks.created"].startswith("Tasks created 3 ")  # one per detractor
    assert cards["tasks.overdue"].startswith("Overdue 3 ")  # answered ten days ago
    other = tmp_path / "other.html"  # another folder's report has no task list
    folder = Path(str(settings.files.path))
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    for name in ("accounts.csv", "contacts.csv", "responses.csv"):
        (elsewhere / name).write_bytes((folder / name).read_bytes())
    result = CliRunner().invoke(
        app,
        ["report", "--config", str(config), "--crm-dir", str(elsewhere), "--out", str(other)],
    )
    assert result.exit_code == 0, result.output
    assert 'id="tasks"' not in other.read_text(encoding="utf-8")

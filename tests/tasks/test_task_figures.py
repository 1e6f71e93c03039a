"""The document's ``tasks`` section: each count, the task closed-loop rate, as of a time.

Pure figures first (``agent.core.metrics.tasks``), then the running agent's document on
the plain-file CRM, next to what ``metrics`` prints for the same folder (no section).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.core.contract import MetricsConfig
from agent.core.document import TaskFigures
from agent.core.metrics.tasks import TaskRecord, task_figures
from agent.service.process import AgentProcess
from agent.sources.folder import compute_folder
from agent.sync.figures import CycleFigures
from agent.tasks.repo import TaskRepo
from tests.service.agentkit import RecordingNotifier, agent_settings, build_agent

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SLA = timedelta(hours=48)
H = timedelta(hours=1)


def _task(
    *,
    status: str = "open",
    created: datetime = T0,
    sent: datetime | None = T0,
    due: datetime = T0 + 48 * H,
    crm_done: datetime | None = None,
    here_done: datetime | None = None,
    answered: datetime | None = T0 - 2 * H,
) -> TaskRecord:
    return TaskRecord(
        created_at=created,
        sent_at=sent,
        due_at=due,
        status=status,
        crm_completed_at=crm_done,
        loop_closed_at=here_done,
        detractor_submitted_at=answered,
    )


TASKS = [
    # completed by the owner in the CRM within the SLA and before its due time
    _task(status="completed", crm_done=T0 + 10 * H),
    # completed by the agent (loop closed in Slack) after its due time, outside the SLA
    _task(status="completed", here_done=T0 + 60 * H),
    # closed in Slack first, then completed in the CRM too: the first time counts
    _task(status="completed", crm_done=T0 + 70 * H, here_done=T0 + 20 * H),
    # open, overdue at T0 + 72 h
    _task(status="open"),
    # open, not due yet (a promoter task: no detractor answer)
    _task(status="open", due=T0 + 14 * 24 * H, answered=None),
    # recorded, its create waits (a refused or deferred batch)
    _task(status="pending", sent=None),
    # recorded after the figures' time: not there yet
    _task(status="open", created=T0 + 100 * H, sent=T0 + 100 * H),
]


def test_each_count_and_the_task_closed_loop_rate() -> None:
    figures = task_figures("files", TASKS, T0 + 72 * H, SLA)

    assert figures.crm == "files"
    assert figures.recorded == 6
    assert figures.pending == 1
    assert figures.created == 5
    assert (figures.open, figures.overdue) == (2, 1)
    assert figures.completed == 3
    assert figures.completed_in_time == 2  # 10 h and 20 h, before the 48 h due time
    assert figures.completed_in_crm == 2
    assert figures.detractor_tasks == 5  # the promoter task is not one
    assert figures.detractor_tasks_completed == 3
    assert figures.detractor_tasks_closed_in_sla == 2  # 12 h and 22 h after the answer
    assert figures.closed_loop_rate == 2 / 5


def test_figures_as_of_an_earlier_time_see_later_completions_as_open() -> None:
    figures = task_figures("files", TASKS, T0 + 30 * H, SLA)

    assert figures.completed == 2  # the one closed at 60 h is still open at 30 h
    assert figures.completed_in_crm == 1  # the CRM completion at 70 h has not happened
    assert (figures.open, figures.overdue) == (3, 0)
    assert figures.detractor_tasks_closed_in_sla == 2


def test_no_detractor_task_means_no_rate() -> None:
    figures = task_figures("hubspot", [_task(answered=None)], T0, SLA)
    assert figures.detractor_tasks == 0
    assert figures.closed_loop_rate is None
    assert task_figures("hubspot", [], T0, SLA).recorded == 0


# -- the running agent's document ------------------------------------------------------


def _document(agent: AgentProcess) -> dict[str, object]:
    try:
        results = agent.run_once()
        assert all(r.ok for r in results), [r.error for r in results]
        return agent.runtime.computed().document.to_json_obj()
    finally:
        agent.store.close()
        agent.leadership.release()


def _complete_one(folder: Path) -> str:
    path = folder / "ax_tasks.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    done = next(r for r in rows if r["alert_key"].startswith("new-detractor:"))
    done["status"] = "completed"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return done["alert_key"]


def test_the_agents_document_has_a_tasks_section_and_metrics_keeps_the_contracts(
    tmp_path: Path,
) -> None:
    settings = agent_settings(tmp_path)
    folder = settings.files.path
    slack = RecordingNotifier()

    first = _document(build_agent(settings, slack))

    tasks = first["tasks"]
    assert isinstance(tasks, dict)
    # Three executives answered as detractors ten days ago: a callback task each, due
    # 48 h after the answer, so all three are overdue; none completed yet.
    assert tasks["crm"] == "files"
    assert (tasks["detractor_tasks"], tasks["created"], tasks["pending"]) == (3, 3, 0)
    assert (tasks["open"], tasks["overdue"], tasks["completed"]) == (3, 3, 0)
    assert tasks["closed_loop_rate"] == 0.0
    assert list(first)[-1] == "tasks"  # after the contract's keys, which are all there
    plain = compute_folder(folder, as_of=datetime.now(UTC), config=MetricsConfig())
    contract = plain.document.to_json_obj()
    assert "tasks" not in contract
    assert list(first)[:-1] == list(contract)
    # The weekly digest posted this cycle lists the task closed-loop rate in its fields.
    digest = next(a for a in slack.sent if a.rule_id == "weekly-digest")
    assert digest.content.attachment is not None
    rate = digest.content.attachment.headlines[-1]
    assert (rate.key, rate.text) == ("tasks.closed_loop_rate", "0.0 %")
    assert rate.note == "0 of 3 detractor tasks in time; 3 open, 3 overdue"

    _complete_one(folder)  # the owner marks one done, days after its due time
    second = _document(build_agent(settings))

    tasks = second["tasks"]
    assert isinstance(tasks, dict)
    assert (tasks["completed"], tasks["completed_in_crm"], tasks["open"]) == (1, 1, 2)
    assert tasks["completed_in_time"] == 0  # past its due time
    assert tasks["detractor_tasks_completed"] == 1
    assert tasks["detractor_tasks_closed_in_sla"] == 0  # ten days after the answer
    assert tasks["closed_loop_rate"] == 0.0
    assert tasks["overdue"] == 2


def test_without_tasks_the_agents_document_has_no_tasks_section(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path, tasks={"enabled": False})
    assert "tasks" not in _document(build_agent(settings))


def test_a_cycle_reads_the_task_figures_once_per_change_of_its_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[datetime] = []
    documents: list[object] = []
    original = TaskRepo.figures
    computed = CycleFigures.computed

    def counting(self: TaskRepo, as_of: datetime, sla: timedelta) -> TaskFigures:
        reads.append(as_of)
        return original(self, as_of, sla)

    def remembering(self: CycleFigures, *args: Any, **kwargs: Any) -> Any:
        value = computed(self, *args, **kwargs)
        documents.append(value.document.tasks)
        return value

    monkeypatch.setattr(TaskRepo, "figures", counting)
    monkeypatch.setattr(CycleFigures, "computed", remembering)

    document = _document(build_agent(agent_settings(tmp_path)))

    # Every job of the cycle asks for its figures (six times); the tasks are read only
    # after the tasks job read completions back, for the job's own report, and after
    # it created tasks: never again while they stay as they are.
    assert len(documents) >= 6
    assert len(reads) == 3
    assert document["tasks"]["created"] == 3  # type: ignore[index]
    assert documents[-1] is not None

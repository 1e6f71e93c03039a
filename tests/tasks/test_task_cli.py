"""``rules test`` lists the tasks the rules would create, with owner and due time."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tests.tasks.portfolio import AS_OF, REPO, write_folder

runner = CliRunner()


def test_rules_test_shows_the_tasks_that_would_be_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AX_TASKS__FALLBACK_OWNER_EMAIL", "cx-lead@vendor.example")
    folder = write_folder(tmp_path / "crm")
    result = runner.invoke(
        app,
        [
            "rules",
            "test",
            "--crm-dir",
            str(folder),
            "--as-of",
            AS_OF.isoformat(),
            "--rules",
            str(REPO / "rules"),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "task new-detractor:responses.csv/R1 in files: 'Call back Dana Exec (score 3, Support) "
        "within 48 h' for owner1@vendor.example, due 2026-06-02 12:00 UTC, high priority"
    ) in lines
    assert any(
        line.startswith("task new-detractor:responses.csv/R2 in files:")
        and "for (no owner; fallback cx-lead@vendor.example)" in line
        for line in lines
    )
    assert "3 task(s) would be created in files" in lines
    assert not (folder / "ax_tasks.csv").exists()  # nothing created, nothing stored
    # A task-only rule (notify.slack: false) sends no alert: it shows in task lines only.
    assert all(line.startswith("task ") for line in lines if "new-detractor" in line)

"""ax-agent metrics and demo, run as a user runs them."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("example", ["three-accounts", "seed_example"])
def test_metrics_prints_the_golden_document(example: str) -> None:
    folder = FIXTURES / example
    as_of = (folder / "as_of.txt").read_text().strip()
    result = runner.invoke(app, ["metrics", "--crm-dir", str(folder), "--as-of", as_of])
    assert result.exit_code == 0, result.output
    expected = json.loads((folder / "expected.json").read_text())
    assert _close(json.loads(result.stdout), expected)


def test_metrics_table_format_shows_headline_and_rejections() -> None:
    folder = FIXTURES / "three-accounts"
    result = runner.invoke(
        app,
        [
            "metrics",
            "--crm-dir",
            str(folder),
            "--as-of",
            "2025-06-01T12:00:00Z",
            "--format",
            "table",
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "Portfolio" in result.stdout
    assert "35.7" in result.stdout  # portfolio NPS 35.714…, rounded for people
    rows = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert 'responses.csv 18 duplicate_response_id "r08"' in rows


def test_metrics_missing_folder_is_exit_2_with_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["metrics", "--crm-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nope" in result.stderr


def test_metrics_missing_file_is_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "crm"
    shutil.copytree(FIXTURES / "three-accounts", folder)
    (folder / "contacts.csv").unlink()
    result = runner.invoke(app, ["metrics", "--crm-dir", str(folder)])
    assert result.exit_code == 2
    assert "contacts.csv" in result.stderr


def test_metrics_bad_as_of_is_exit_2() -> None:
    folder = FIXTURES / "three-accounts"
    result = runner.invoke(app, ["metrics", "--crm-dir", str(folder), "--as-of", "yesterday"])
    assert result.exit_code == 2
    assert "--as-of 'yesterday' is not an ISO 8601 instant" in result.stderr


def test_metrics_accepts_any_offset() -> None:
    folder = FIXTURES / "three-accounts"
    result = runner.invoke(
        app, ["metrics", "--crm-dir", str(folder), "--as-of", "2025-06-01T14:00:00+02:00"]
    )
    assert result.exit_code == 0
    expected = json.loads((folder / "expected.json").read_text())
    assert json.loads(result.stdout)["portfolio"] == pytest.approx(expected["portfolio"])


def test_demo_runs_a_cycle_and_the_second_run_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "revenue coverage" in first.stdout
    assert "rests on" in first.stdout
    assert "Wrote " in first.stdout
    assert "invalid_score" in first.stdout  # the sample's malformed row, with its position
    written = (tmp_path / "ax-demo" / "crm" / "ax_accounts.csv").read_text()
    assert written.count("\n") == 251  # header + 250 accounts
    assert "new alerts recorded" in first.stdout
    second = runner.invoke(app, ["demo"])
    assert second.exit_code == 0, second.output
    assert "Nothing changed since the last cycle: no CRM writes." in second.stdout
    assert (tmp_path / "ax-demo" / "crm" / "ax_accounts.csv").read_text() == written


def test_the_command_the_demo_names_continues_it_without_resending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_STATE_URL", "AX_SLACK__BOT_TOKEN", "AX_CRM", "AX_RULES_DIR"):
        monkeypatch.delenv(name, raising=False)
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    hint = first.stdout[first.stdout.index("Continue this demo") :].splitlines()[1].split()
    assert hint[:5] == ["ax-agent", "run", "--once", "--config", "ax-demo/ax-agent.yaml"]
    assert hint[5:] == ["--as-of", "2026-06-01T12:00:00Z"]
    state = tmp_path / "ax-demo" / "ax-state.db"
    before = sqlite3.connect(state).execute("select count(*) from alert_outbox").fetchone()[0]
    assert before > 0
    again = runner.invoke(app, hint[1:])
    assert again.exit_code == 0, again.output
    after = sqlite3.connect(state).execute("select count(*) from alert_outbox").fetchone()[0]
    assert after == before  # the same state and date: no alert is recorded (or printed) again
    assert not (tmp_path / "ax-state.db").exists()  # no second state file beside it

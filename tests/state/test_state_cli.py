"""``ax-agent state upgrade`` and ``ax-agent state show``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import structlog
import typer
from typer.testing import CliRunner, Result

from agent.cli import state_cmd
from agent.state import migrate
from agent.state.store import StateStore


def _invoke(app: typer.Typer, args: list[str]) -> Result:
    """Run a command; it configures logging onto the runner's stderr, so undo that after."""
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    try:
        return CliRunner().invoke(app, args)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """ax-agent (test harness)."""

    state_cmd.register(root)
    return root


def test_upgrade_creates_the_schema_and_reports_the_revision(
    app: typer.Typer, state_url: str
) -> None:
    result = _invoke(app, ["state", "upgrade", "--url", state_url])
    assert result.exit_code == 0, result.output
    assert f"at revision {migrate.head_revision()}" in result.output
    with StateStore.open(state_url, migrate_schema=False) as store:
        assert store.revision() == migrate.head_revision()


def test_show_reports_rows_cursors_cycles_and_leader(app: typer.Typer, state_url: str) -> None:
    with StateStore.open(state_url) as store:
        store.set_cursor("salesforce", "account", "2024-06-01T00:00:00Z")
        cycle = store.start_cycle("crm_sync")
        store.finish_cycle(cycle, "failed", {"accounts": 3}, "timeout")
        with store.leadership("ax-agent") as lead:
            assert lead.is_leader()
            result = CliRunner().invoke(
                app, ["state", "show", "--url", state_url, "--format", "json"]
            )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["revision"] == report["head"] == migrate.head_revision()
    assert report["rows"]["cursors"] == 1
    assert report["rows"]["cycles"] == 1
    assert report["cursors"] == [
        {"source": "salesforce", "stream": "account", "value": "2024-06-01T00:00:00Z"}
    ]
    assert report["cycles"][0]["status"] == "failed"
    assert report["cycles"][0]["counts"] == {"accounts": 3}
    assert "pid" in report["leader"]


def test_show_as_a_table(app: typer.Typer, sqlite_url: str) -> None:
    StateStore.open(sqlite_url).close()
    result = _invoke(app, ["state", "show", "--url", sqlite_url])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())  # a long path wraps the first line
    assert f"revision {migrate.head_revision()}" in shown
    assert "leader: none" in shown
    assert "responses" in result.output


def test_the_table_shows_a_crm_watermark_in_short(app: typer.Typer, sqlite_url: str) -> None:
    watermark = {"since": "2026-06-01T11:55:00.000Z", "seen": {f"001Q{i}": "x" for i in range(3)}}
    with StateStore.open(sqlite_url) as store, store.transaction() as tx:
        tx.set_cursor("salesforce", "account", json.dumps(watermark))
    result = _invoke(app, ["state", "show", "--url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "since 2026-06-01T11:55:00.000Z, 3 seen" in result.output
    assert "001Q0" not in result.output  # the ids seen are counted, not listed


def test_show_on_a_missing_file_says_how_to_create_it(app: typer.Typer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    result = _invoke(app, ["state", "show", "--url", url])
    assert result.exit_code == 2
    assert "ax-agent state upgrade" in result.output
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.postgres
def test_show_on_an_unmigrated_database_says_how_to_migrate(
    app: typer.Typer, postgres_url: str
) -> None:
    result = _invoke(app, ["state", "show", "--url", postgres_url])
    assert result.exit_code == 2
    assert "revision none" in result.output
    assert "ax-agent state upgrade" in result.output


def test_the_url_comes_from_the_environment(
    app: typer.Typer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AX_STATE_URL", sqlite_url)
    result = _invoke(app, ["state", "upgrade"])
    assert result.exit_code == 0, result.output
    assert sqlite_url.removeprefix("sqlite:///") in result.output


def test_an_unsupported_url_fails_with_one_line(app: typer.Typer) -> None:
    result = _invoke(app, ["state", "upgrade", "--url", "mysql://x@h/db"])
    assert result.exit_code == 2
    assert "not supported" in result.output

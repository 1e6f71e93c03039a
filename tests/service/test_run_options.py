"""ax-agent run --dry-run prints the plan; --full re-reads the CRM; fields are checked first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.core.contract import FieldSpec
from agent.core.ports import FieldProblem
from agent.sources.files import FilesCrm, written_file
from tests.service.agentkit import agent_settings, build_agent


def test_dry_run_prints_the_planned_updates_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = agent_settings(tmp_path)
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"files: {{path: {settings.files.path}}}\n"
        f"state_url: {settings.state_url}\n"
        f"rules_dir: {settings.rules_dir}\n"
        "server: {enabled: false}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--once", "--dry-run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.split(" ")[1:3] == ["nps", "(empty)"] and " → " in line for line in lines)
    assert any(line.endswith("record(s) would be written") for line in lines)
    assert lines[-1].endswith("alert message(s) would be sent")
    # The tasks job lists the tasks it would create, with owner and due time (creates none).
    assert any(line.endswith("task(s) would be created in files") for line in lines)
    assert any(line.startswith("task new-detractor:") and " due " in line for line in lines)
    assert not written_file(settings.files.path, "account").exists()


def test_full_resync_rereads_the_crm_once(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    first = build_agent(settings)
    first.run_once()
    first.run_once()  # the agent's own writes changed the folder: read once more
    results = {r.job: r for r in first.run_once()}
    assert results["crm_sync"].counts.get("accounts_read", 0) == 0  # nothing new: none read
    first.store.close()
    first.leadership.release()
    again = build_agent(settings)
    again.runtime.full_sync = True
    results = {r.job: r for r in again.run_once()}
    assert results["crm_sync"].counts["accounts_read"] > 0  # everything re-read
    assert again.runtime.full_sync is False  # later syncs read changes only


class _Unprovisioned(FilesCrm):
    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        return [FieldProblem("account", "nps", "does not exist", "run `ax-agent crm provision x`")]


def test_missing_fields_keep_the_write_back_off_until_fixed(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    agent = build_agent(settings)
    folder = settings.files.path
    agent.runtime.crm = _Unprovisioned(folder)
    results = {r.job: r for r in agent.run_once()}
    assert not results["writeback"].ok
    cycle = next(c for c in agent.store.recent_cycles(20) if c.job == "writeback")
    assert "account field nps: does not exist" in (cycle.error or "")
    assert "ax-agent crm provision x" in (cycle.error or "")
    assert not written_file(folder, "account").exists()
    agent.runtime.crm = FilesCrm(folder)  # an admin ran the provisioning
    results = {r.job: r for r in agent.run_once()}
    assert results["writeback"].ok
    assert written_file(folder, "account").is_file()


@pytest.mark.postgres
def test_run_once_is_refused_naming_the_agent_that_holds_the_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    """PostgreSQL: the advisory lock is free (the leader's session was lost) but the
    leader's lease runs; ``run --once`` must not lead beside it. (On SQLite the file
    lock alone decides, and a second agent is refused by it.)"""
    from agent.state.leader_epoch import Fence
    from agent.state.store import StateStore

    settings = agent_settings(tmp_path)
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"files: {{path: {settings.files.path}}}\n"
        f"state_url: '{postgres_url}'\n"
        f"rules_dir: {settings.rules_dir}\n"
        "server: {enabled: false}\n",
        encoding="utf-8",
    )
    store = StateStore.open(postgres_url)
    # Another agent leads by its lease alone (its lock is free, as after a lost session).
    other = Fence(store.engine, host="other-host", pid=4242)
    assert other.take(holds_lock=False)
    store.close()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith("error: ax-agent pid 4242 on other-host, epoch 1, lease until ")
    assert " leads on " in line
    assert "Traceback" not in result.output
    assert not written_file(settings.files.path, "account").exists()  # nothing was done
    store = StateStore.open(postgres_url)
    current = Fence(store.engine).current()
    store.close()
    assert current is not None
    assert (current.pid, current.epoch) == (4242, 1)  # its lease is untouched

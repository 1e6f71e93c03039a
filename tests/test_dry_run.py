"""``run --dry-run`` previews everything and its output is what the real run then does.

Each field as ``id field old → new``, each alert with its channel; nothing is written
to the CRM and nothing is sent or recorded. The real run then writes exactly those
fields and records exactly those alerts, and a dry run after it has nothing to show.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2025-06-01T12:00:00Z"
runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_STATE_URL", "AX_SLACK__BOT_TOKEN", "AX_CRM", "AX_RULES_DIR"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(REPO / "tests" / "fixtures" / "three-accounts", tmp_path / "crm")
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    path = tmp_path / "ax.yaml"
    path.write_text(
        "crm: files\nfiles: {path: crm}\nstate_url: sqlite:///state.db\nrules_dir: rules\n",
        encoding="utf-8",
    )
    return path


def _run(config: Path, *extra: str) -> list[str]:
    result = runner.invoke(
        app, ["run", "--once", "--config", str(config), "--as-of", AS_OF, *extra]
    )
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if " → " in line]


def _written(folder: Path) -> dict[tuple[str, str], str]:
    cells: dict[tuple[str, str], str] = {}
    for name in ("ax_accounts.csv", "ax_contacts.csv"):
        with (folder / name).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                rid = row.pop("id")
                cells.update({(rid, k): v for k, v in row.items() if v != ""})
    return cells


def test_the_dry_run_shows_what_the_real_run_then_does(config: Path) -> None:
    folder = config.parent / "crm"
    preview = _run(config, "--dry-run")
    alerts = sorted(line for line in preview if line.startswith(("alert ", "escalation ")))
    fields = [line.split(" ", 4) for line in preview if line not in alerts]
    assert ["A1", "health_score", "(empty)", "→", "50"] in fields
    assert "alert tier-misalignment → #account-management: Tiers disagree" in alerts
    assert not (folder / "ax_accounts.csv").exists()  # nothing written to the CRM
    db = sqlite3.connect(config.parent / "state.db")
    assert db.execute("select count(*) from alert_outbox").fetchone()[0] == 0  # nor recorded
    db.close()

    _run(config)  # the real run
    written = _written(folder)
    shown = {(rid, name): new for rid, name, _old, _arrow, new in fields}
    assert {k: written.get(k) for k in shown} == shown
    assert set(written) == set(shown)  # every written field was previewed
    db = sqlite3.connect(config.parent / "state.db")
    rows = db.execute(
        "select kind, rule_id, channel, payload from alert_outbox "
        "where status in ('sent', 'printed')"
    ).fetchall()
    db.close()
    recorded = sorted(
        f"{kind} {rule} → {channel}: {json.loads(payload)['content']['title']}"
        for kind, rule, channel, payload in rows
    )
    assert recorded == alerts  # the same alerts, to the same channels

    assert _run(config, "--dry-run") == []  # nothing left to write or send

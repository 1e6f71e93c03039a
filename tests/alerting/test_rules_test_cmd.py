"""``rules test`` tells the truth: it shows what the next real cycle sends.

The real pipeline runs (realert, silences, inhibition, digests) against a copy of the
given state's alert rows, so its count equals what ``run --once`` then records, and
after that run it shows nothing new.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "tests" / "fixtures" / "three-accounts"
AS_OF = "2025-06-01T12:00:00Z"
RULES = """\
rules:
  - id: big
    scope: account
    when: account.revenue >= 100000
    inhibits: [any-revenue]
    realert: 7d
  - id: any-revenue
    scope: account
    when: account.revenue > 0
  - id: alpha-only
    scope: account
    when: account.name == "Alpha, Inc."
"""
runner = CliRunner()


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_STATE_URL", "AX_SLACK__BOT_TOKEN", "AX_CRM", "AX_RULES_DIR"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(FOLDER, tmp_path / "crm")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(RULES, encoding="utf-8")
    config = tmp_path / "ax.yaml"
    config.write_text(
        f"crm: files\nfiles: {{path: {tmp_path / 'crm'}}}\n"
        f"state_url: sqlite:///{tmp_path / 'state.db'}\nrules_dir: {tmp_path / 'rules'}\n",
        encoding="utf-8",
    )
    return config


def _test(config: Path, *extra: str) -> str:
    result = runner.invoke(
        app, ["rules", "test", "--config", str(config), "--as-of", AS_OF, *extra]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_inhibition_applies_and_each_alert_says_why(setup: Path) -> None:
    out = _test(setup)
    assert "would send 4 message(s) for 4 alert(s)" in out
    assert "(big: 3, alpha-only: 1)" in out
    assert out.count("held: any-revenue ") == 3
    assert "inhibited by big" in out
    assert "why: big: account.revenue >= 100000 (condition became true)" in out
    assert "dry run" not in out
    assert "against no state (a first run)" in out


def test_the_preview_equals_what_the_real_run_then_records(setup: Path) -> None:
    before = _test(setup)
    assert "for 4 alert(s)" in before
    run = runner.invoke(app, ["run", "--once", "--config", str(setup), "--as-of", AS_OF])
    assert run.exit_code == 0, run.output
    db = sqlite3.connect(setup.parent / "state.db")
    rows = db.execute("select rule_id, status from alert_outbox where kind = 'alert'").fetchall()
    db.close()
    assert sorted(r for r, _ in rows) == ["alpha-only", "big", "big", "big"]
    assert {s for _, s in rows} == {"printed"}  # no Slack token: printed, not sent
    after = _test(setup)  # against the state the run left: nothing is due again
    assert "would send 0 message(s) for 0 alert(s)" in after
    assert "against state sqlite:///" in after
    assert "(7 alert state(s), 0 active silence(s))" in after  # 3 held ones too


def test_rule_and_account_narrow_the_output(setup: Path) -> None:
    out = _test(setup, "--rule", "big", "--account", "A1")
    assert "for 1 alert(s)" in out
    assert "(big: 1)" in out
    assert "only --rule big --account A1" in out
    unknown = runner.invoke(
        app, ["rules", "test", "--config", str(setup), "--as-of", AS_OF, "--rule", "bgi"]
    )
    assert unknown.exit_code == 2
    assert "--rule 'bgi': no such rule" in unknown.output


def test_a_missing_rules_folder_says_to_pass_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AX_CONFIG", raising=False)
    monkeypatch.delenv("AX_RULES_DIR", raising=False)
    result = runner.invoke(app, ["rules", "test", "--crm-dir", str(FOLDER), "--as-of", AS_OF])
    assert result.exit_code == 2
    assert "pass --rules PATH" in result.output
    assert "Traceback" not in result.output


def test_a_preview_with_more_messages_than_a_delivery_lane_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview delivers as the real cycle does, on several threads (a lane per
    channel, the next batch claimed ahead on another): its private copy of the alert
    state must serve them all. An in-memory copy is one connection, which SQLite
    refuses to a second thread, so a preview of more messages than a lane holds (20)
    stopped with a traceback."""
    from benchmarks.generate import generate, write_crm_folder

    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_STATE_URL", "AX_SLACK__BOT_TOKEN", "AX_CRM", "AX_RULES_DIR"):
        monkeypatch.delenv(name, raising=False)
    write_crm_folder(tmp_path / "crm", generate(accounts=120, contacts=240, responses=480))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(
        "rules:\n  - id: every-account\n    scope: account\n    when: account.revenue > 0\n",
        encoding="utf-8",
    )
    config = tmp_path / "ax.yaml"
    config.write_text(
        f"crm: files\nfiles: {{path: {tmp_path / 'crm'}}}\n"
        f"state_url: sqlite:///{tmp_path / 'state.db'}\nrules_dir: {tmp_path / 'rules'}\n"
        "slack: {digest_threshold: 0}\n",  # every alert its own message
        encoding="utf-8",
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the private copy goes
    output = _test(config)
    assert "would send 120 message(s) for 120 alert(s)" in output
    assert list(scratch.iterdir()) == []  # the private copy is removed after

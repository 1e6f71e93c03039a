"""``ax-agent plan coverage``, run as a user runs it: a folder, the configured CRM, formats."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.state.ops_mirror import replacing_stream
from agent.state.store import StateStore
from tests.core_builders import AS_OF
from tests.plan.test_plan_rule import ACCOUNTS, CONTACTS, RESPONSES
from tests.report_support import SVG, by_id, parse_strict, text_of

runner = CliRunner()
WHEN = AS_OF.isoformat()


def _write_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "accounts.csv").write_text(
        "id,name,domains,revenue\n" + "".join(f"{a.id},{a.name},,{a.revenue}\n" for a in ACCOUNTS)
    )
    (folder / "contacts.csv").write_text(
        "id,account_id,email,name,title\n"
        + "".join(f"{c.id},{c.account_id},{c.email or ''},,{c.title}\n" for c in CONTACTS)
    )
    (folder / "responses.csv").write_text(
        "response_id,email,score,submitted_at\n"
        + "".join(
            f"{r.response_id},{r.email},{r.score},{r.submitted_at.isoformat()}\n" for r in RESPONSES
        )
    )
    return folder


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("AX_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AX_METRICS__WINDOW_DAYS", "30")
    return _write_folder(tmp_path / "crm")


def test_json_follows_the_documented_shape(folder: Path) -> None:
    result = runner.invoke(
        app, ["plan", "coverage", "--crm-dir", str(folder), "--as-of", WHEN, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["as_of"] == WHEN
    assert [a["id"] for a in plan["accounts"]] == ["A2", "A4", "A6"]
    assert plan["skipped"] == [{"account_id": "A3", "reason": "no_eligible_contact"}]
    assert plan["coverage_planned"] == pytest.approx(2800 / 3400)


def test_options_change_the_plan(folder: Path) -> None:
    args = ["plan", "coverage", "--crm-dir", str(folder), "--as-of", WHEN, "--format", "json"]
    narrow = json.loads(
        runner.invoke(app, [*args, "--target", "0.5", "--per-account", "1", "--top", "0"]).stdout
    )
    assert [(a["id"], len(a["contacts"])) for a in narrow["accounts"]] == [("A2", 1)]
    assert narrow["tier_gaps"] == []
    rested = json.loads(runner.invoke(app, [*args, "--fatigue-days", "30"]).stdout)
    assert [c["id"] for c in rested["accounts"][1]["contacts"]] == ["C4m", "C4f"]


def test_csv_has_one_row_per_contact(folder: Path) -> None:
    result = runner.invoke(
        app, ["plan", "coverage", "--crm-dir", str(folder), "--as-of", WHEN, "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["kind"], r["account_id"], r["contact_id"]) for r in rows] == [
        ("plan", "A2", "C2e"),
        ("plan", "A2", "C2m1"),
        ("plan", "A2", "C2f"),
        ("plan", "A4", "C4m"),
        ("plan", "A6", "C6u"),
        ("tier_gap", "A1", "C1m"),
        ("tier_gap", "A1", "C1f"),
    ]


def test_table_states_the_headline(folder: Path) -> None:
    result = runner.invoke(app, ["plan", "coverage", "--crm-dir", str(folder), "--as-of", WHEN])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "Revenue coverage now 29.4 %; target 80.0 %." in text
    assert "Survey 7 contact(s) at 3 account(s): 82.4 % if all answer, 42.2 % expected." in text
    assert "A3 (no_eligible_contact)" in text


def test_a_missing_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "coverage", "--crm-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "CRM folder not found" in result.stderr
    assert "Traceback" not in result.output


def _salesforce_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A Salesforce agent's settings, its state database in ``tmp_path`` (the URL)."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("AX_CRM", "salesforce")
    monkeypatch.setenv("AX_STATE_URL", url)
    return url


def test_the_configured_crm_is_read_from_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _salesforce_state(tmp_path, monkeypatch)
    monkeypatch.setenv("AX_METRICS__WINDOW_DAYS", "30")
    missing = runner.invoke(app, ["plan", "coverage", "--as-of", WHEN])
    assert missing.exit_code == 2
    assert "run `ax-agent run --once` first" in missing.stderr
    with StateStore.open(url) as store:
        store.replace_all("salesforce", "account", ACCOUNTS)
        store.replace_all("salesforce", "contact", CONTACTS)
        store.add_responses(RESPONSES)
    result = runner.invoke(app, ["plan", "coverage", "--as-of", WHEN, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [a["id"] for a in json.loads(result.stdout)["accounts"]] == ["A2", "A4", "A6"]


def test_a_full_read_left_halfway_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync stopped in the middle of a full read: the plan would mix two reads."""
    url = _salesforce_state(tmp_path, monkeypatch)
    monkeypatch.setattr("agent.state.store.MIRROR_WAIT_SECONDS", 0.0)
    with StateStore.open(url) as store:
        store.replace_all("salesforce", "account", ACCOUNTS)
        store.replace_all("salesforce", "contact", CONTACTS)
        store.set_cursor("salesforce", replacing_stream("contact"), "2025-06-01T09:00:00+00:00")
    result = runner.invoke(app, ["plan", "coverage", "--as-of", WHEN])
    assert result.exit_code == 2
    assert "halfway through a full read of its contacts" in result.stderr
    assert "`ax-agent run --once` completes it" in result.stderr
    assert "Traceback" not in result.output


def test_the_report_draws_the_path_to_the_target(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", "--crm-dir", str(folder), "--as-of", WHEN, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    tree = parse_strict(out.read_text(encoding="utf-8"))
    section = by_id(tree, "plan")
    lead = " ".join(text_of(section).split())
    assert "Revenue coverage is 29.4 %. Survey 7 contacts at 3 uncovered accounts" in lead
    assert "82.4 % if all answer (target 80 %)" in lead
    assert "42.2 % is expected" in lead
    assert "A1 misses management, frontline" in lead
    rows = by_id(tree, "plan-table").find("tbody")
    assert rows is not None
    cells = [[text_of(td) for td in tr] for tr in rows]
    assert [(r[1], r[3], r[4]) for r in cells] == [
        ("Account A2", "52.9 %", "50.0 %"),
        ("Account A4", "70.6 %", "0.0 %"),
        ("Account A6", "82.4 %", "8.3 %"),
    ]
    assert list(by_id(tree, "chart-plan").iter(f"{SVG}svg"))

"""Input files, as a user meets them: header checks, every reject with its value, the
``dropped`` section, and responses of a rejected account."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.core.contract import MetricsConfig
from agent.core.plan import PlanOptions
from agent.sources.folder import compute_folder
from agent.sync.coverage import plan_for_folder
from tests.core_builders import AS_OF
from tests.service.agentkit import agent_settings, build_agent

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent
runner = CliRunner()
RESPONSE_HEADER = "response_id,email,score,submitted_at,driver,comment,account_hint,loop_closed_at"


def _folder(tmp_path: Path, accounts: str, contacts: str, responses: str) -> Path:
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "accounts.csv").write_text(accounts, encoding="utf-8")
    (folder / "contacts.csv").write_text(contacts, encoding="utf-8")
    (folder / "responses.csv").write_text(responses, encoding="utf-8")
    return folder


def _renamed(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "crm"
    shutil.copytree(FIXTURES / "three-accounts", folder)
    path = folder / name
    lines = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(lines[0].replace(old, new) + "\n" + lines[1], encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "command",
    [
        ["metrics"],
        ["metrics", "--format", "table"],
        ["report", "--out", "{tmp}/r.html"],
        ["rules", "test", "--rules", str(REPO / "rules")],
    ],
)
def test_a_renamed_required_column_stops_every_folder_command(
    tmp_path: Path, command: list[str]
) -> None:
    """Today `annual_revenue` silently made every revenue 0 and exited 0."""
    folder = _renamed(tmp_path, "accounts.csv", "revenue,", "annual_revenue,")
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = runner.invoke(
        app, [*args, "--crm-dir", str(folder), "--as-of", "2025-06-01T12:00:00Z"]
    )
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert (
        "accounts.csv: required column `revenue` is missing from the header; "
        "did you mean `annual_revenue`?"
    ) in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_a_score_typo_is_one_header_error_not_every_row_rejected(tmp_path: Path) -> None:
    folder = _renamed(tmp_path, "responses.csv", "score", "scroe")
    result = runner.invoke(app, ["metrics", "--crm-dir", str(folder)])
    assert result.exit_code == 2
    assert "`score` is missing from the header; did you mean `scroe`?" in " ".join(
        result.stderr.split()
    )


def test_a_header_in_other_case_is_accepted_with_a_notice(tmp_path: Path) -> None:
    folder = _renamed(tmp_path, "accounts.csv", "revenue,", " Revenue ,")
    result = runner.invoke(
        app, ["metrics", "--crm-dir", str(folder), "--as-of", "2025-06-01T12:00:00Z"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["portfolio"]["total_revenue"] == 1_000_000
    assert "header_normalised" in result.stderr
    assert "' Revenue ' read as 'revenue'" in result.stderr


def test_a_duplicate_header_is_an_error(tmp_path: Path) -> None:
    folder = _renamed(tmp_path, "contacts.csv", "name", "email")
    result = runner.invoke(app, ["metrics", "--crm-dir", str(folder)])
    assert result.exit_code == 2
    assert "contacts.csv: column `email` appears twice" in result.stderr


def test_a_run_cycle_fails_the_sync_job_on_a_missing_column(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    accounts = settings.files.path / "accounts.csv"  # type: ignore[operator]
    header, rest = accounts.read_text(encoding="utf-8").split("\n", 1)
    accounts.write_text(header.replace("revenue", "annual_revenue", 1) + "\n" + rest)
    agent = build_agent(settings)
    try:
        results = {r.job: r for r in agent.run_once()}
        assert not results["crm_sync"].ok
        cycle = next(c for c in agent.store.recent_cycles(20) if c.job == "crm_sync")
        assert "required column `revenue` is missing" in (cycle.error or "")
        assert "did you mean `annual_revenue`?" in (cycle.error or "")
        assert agent.store.load_accounts("files") == []  # nothing computed from a bad header
    finally:
        agent.store.close()
        agent.leadership.release()


def _messy(tmp_path: Path) -> Path:
    return _folder(
        tmp_path,
        "id,name,domain,revenue\nA1,Alpha,alpha.com,100\nA2,Beta,beta.com,lots\n",
        "id,account_id,email,name\n"
        "C1,A1,ann@alpha.com,Ann\n"
        "C2,A1,,NoMail\n"
        "C3,A2,bob@beta.com,Bob\n"
        "C4,A7,x@nowhere.example,Nobody\n",
        RESPONSE_HEADER + "\n"
        "r1,ann@alpha.com,9,2025-05-01T00:00:00Z,,,,\n"
        "r2,bob@beta.com,3,2025-05-01T00:00:00Z,,,,\n"
        "r3,carl@beta.com,3,2025-05-01T00:00:00Z,,,,\n"
        "r4,dora@elsewhere.example,3,2025-05-01T00:00:00Z,,,,\n"
        "r5,ann@alpha.com,11,2025-05-01T00:00:00Z,,,,\n"
        "r6,ann@alpha.com,,2025-05-01T00:00:00Z,,,,\n"
        "r7,ann@alpha.com,8,2025-05-01T00:00:00Z,,,\n",
    )


def test_dropped_rows_and_responses_of_a_rejected_account(tmp_path: Path) -> None:
    folder = _messy(tmp_path)
    doc = compute_folder(folder, as_of=AS_OF, config=MetricsConfig()).document.to_json_obj()
    assert doc["dropped"] == [
        {"source": "accounts.csv", "position": 2, "reason": "invalid_revenue"},
        {"source": "contacts.csv", "position": 2, "reason": "missing_email"},
        {"source": "contacts.csv", "position": 3, "reason": "account_rejected"},
        {"source": "contacts.csv", "position": 4, "reason": "unknown_account"},
    ]
    assert {u["response_id"]: u["reason"] for u in doc["unmatched"]} == {
        "r2": "account_rejected",  # a contact of the rejected account
        "r3": "account_rejected",  # its domain
        "r4": "no_match",
    }
    assert doc["rejected"] == [
        {"source": "accounts.csv", "position": 2, "reason": "invalid_revenue", "value": "lots"},
        {"source": "responses.csv", "position": 5, "reason": "invalid_score", "value": "11"},
        {"source": "responses.csv", "position": 6, "reason": "invalid_score", "value": ""},
        {
            "source": "responses.csv",
            "position": 7,
            "reason": "wrong_field_count",
            "value": "r7,ann@alpha.com,8,2025-05-01T00:00:00Z,,,",
        },
    ]


def test_the_report_lists_the_same_rows_left_out_as_metrics(tmp_path: Path) -> None:
    folder = _messy(tmp_path)
    metrics = compute_folder(folder, as_of=AS_OF, config=MetricsConfig()).document
    report = plan_for_folder(folder, AS_OF, MetricsConfig(), PlanOptions())[0].document
    assert report.unmatched == metrics.unmatched
    assert report.dropped == metrics.dropped
    assert "account_rejected" in {u.reason for u in report.unmatched}


def test_a_short_row_no_longer_shifts_its_fields(tmp_path: Path) -> None:
    """7 of 8 fields: today the loop-closed time landed in account_hint."""
    folder = _folder(
        tmp_path,
        "id,name,domain,revenue\nA1,Alpha,alpha.com,100\n",
        "id,account_id,email\nC1,A1,ann@alpha.com\n",
        RESPONSE_HEADER + "\nr1,ann@alpha.com,3,2025-05-01T00:00:00Z,,,2025-05-02T00:00:00Z\n",
    )
    doc = compute_folder(folder, as_of=AS_OF, config=MetricsConfig()).document
    assert doc.portfolio.detractors == 0
    assert [(r.position, r.reason) for r in doc.rejected] == [(1, "wrong_field_count")]


def test_the_table_shows_every_reject_with_its_value(tmp_path: Path) -> None:
    folder = _messy(tmp_path)
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
    lines = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert 'responses.csv 5 invalid_score "11"' in lines
    assert 'responses.csv 6 invalid_score ""' in lines
    assert 'accounts.csv 2 invalid_revenue "lots"' in lines
    assert "contacts.csv 2 missing_email" in lines


def test_the_table_says_how_many_more_and_how_to_list_them(tmp_path: Path) -> None:
    bad = "".join(f"b{i},a@alpha.com,x{i},2025-05-01T00:00:00Z,,,,\n" for i in range(70))
    folder = _folder(
        tmp_path,
        "id,name,domain,revenue\nA1,Alpha,alpha.com,100\n",
        "id,account_id,email\nC1,A1,a@alpha.com\n",
        RESPONSE_HEADER + "\n" + bad,
    )
    result = runner.invoke(
        app,
        ["metrics", "--crm-dir", str(folder), "--format", "table"],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert 'responses.csv 50 invalid_score "x49"' in flat.replace("│", "").replace("  ", " ")
    assert "x50" not in flat
    assert "... and 20 more rejected rows: ax-agent metrics --crm-dir" in flat
    assert "--format json lists all of them" in flat


def test_metrics_on_poison_files_exits_0_with_the_rows_rejected(tmp_path: Path) -> None:
    """The real command, as a subprocess: no traceback, every poison row rejected."""
    import subprocess
    import sys

    good = "g1,ann@alpha.com,9,2025-05-01T00:00:00Z,,,,\n"
    folder = _folder(
        tmp_path,
        "id,name,domain,revenue\nA1,Alpha,alpha.com,100\n",
        "id,account_id,email\nC1,A1,ann@alpha.com\n",
        RESPONSE_HEADER
        + "\n"
        + good
        + 'big,ann@alpha.com,3,2025-05-01T00:00:00Z,,"'
        + "y" * 200_000
        + '",,\n'
        + "g2,bob@alpha.com,9,2025-05-01T00:00:00Z,,,,\n"
        + 'open,ann@alpha.com,3,2025-05-01T00:00:00Z,,"never closed\n',
    )
    deep = '{"response_id": "deep", "score": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lone = '{"response_id": "lone", "score": 9, "submitted_at": "2025-05-01T00:00:00Z", '
    lone += '"comment": "\\ud800"}'
    (folder / "responses.jsonl").write_text(deep + "\n" + lone + "\n", encoding="utf-8")
    ax = Path(sys.executable).with_name("ax-agent")
    result = subprocess.run(
        [str(ax), "metrics", "--crm-dir", str(folder), "--as-of", "2025-06-01T12:00:00Z"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert [(r["source"], r["position"], r["reason"]) for r in doc["rejected"]] == [
        ("responses.csv", 2, "field_too_large"),
        ("responses.csv", 4, "unterminated_quote"),
        ("responses.jsonl", 1, "invalid_record"),
        ("responses.jsonl", 2, "invalid_record"),
    ]
    assert doc["rejected"][0]["value"] == "y" * 80
    assert doc["rejected"][3]["value"] == lone[:80]
    assert doc["portfolio"]["responded_contacts"] == 1
    assert sum(a["respondents"] for a in doc["accounts"]) == 2

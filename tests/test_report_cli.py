"""``ax-agent report``: from a CRM folder or the configured CRM to one HTML file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.core.timeutil import parse_instant
from agent.report import CHART_IDS
from agent.sources.plainfiles import read_crm_folder
from agent.state.store import StateStore
from tests.report_support import FIXTURES, SVG, by_id, parse_strict, text_of

runner = CliRunner()
AS_OF = "2025-06-01T12:00:00Z"
THREE = FIXTURES / "three-accounts"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_SECRETS_FILE", "AX_STATE_URL", "AX_CRM"):
        monkeypatch.delenv(name, raising=False)


def _nps_card(page: str) -> str:
    tree = parse_strict(page)
    card = next(e for e in tree.iter("div") if e.get("data-key") == "nps")
    return text_of(card)


def test_report_from_a_crm_folder(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", "--crm-dir", str(THREE), "--as-of", AS_OF, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "3 accounts as of 2025-06-01T12:00:00+00:00" in result.output
    page = out.read_text(encoding="utf-8")
    assert _nps_card(page).startswith("NPS 35.7")
    assert len(list(parse_strict(page).iter(f"{SVG}svg"))) == len(CHART_IDS)
    assert not list(parse_strict(page).iter("a"))  # a plain-file CRM has no record pages
    assert not list(tmp_path.glob(".report.html.*"))  # no temporary file left behind


def test_as_of_changes_the_figures(tmp_path: Path) -> None:
    out = tmp_path / "late.html"
    result = runner.invoke(
        app,
        ["report", "--crm-dir", str(THREE), "--as-of", "2027-01-01T00:00:00Z", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert _nps_card(out.read_text()).startswith("NPS -")  # every answer is outside the window


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crm-dir", "no-such-folder"], "no-such-folder"),
        (["--crm-dir", "{empty}"], "accounts.csv"),
        (["--crm-dir", str(THREE), "--as-of", "yesterday"], "--as-of 'yesterday'"),
        (["--crm-dir", str(THREE), "--out", "missing/dir/r.html"], "folder missing/dir"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    args = [a.replace("{empty}", str(tmp_path / "empty")) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "r.html")]
    result = runner.invoke(app, ["report", *args])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(errors) == 1, result.stderr  # one line; anything else is a JSON log event
    assert errors[0].startswith("error: ")
    assert message in errors[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_configured_files_crm_needs_no_crm_dir(tmp_path: Path) -> None:
    shutil.copytree(THREE, tmp_path / "crm")
    config = tmp_path / "ax.yaml"
    config.write_text(
        "crm: files\nfiles:\n  path: crm\nslack:\n  crm_url_template: https://crm.example/a/{id}\n"
    )
    out = tmp_path / "r.html"
    result = runner.invoke(
        app, ["report", "--as-of", AS_OF, "--out", str(out), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    tree = parse_strict(out.read_text())
    links = [a.get("href") for a in by_id(tree, "at-risk-table").iter("a")]
    assert links == ["https://crm.example/a/A1"]


def _mirror(store: StateStore, crm: str) -> None:
    """Put the three-accounts portfolio into the state as a synced CRM would."""
    data = read_crm_folder(THREE, parse_instant(AS_OF))
    store.upsert_records(crm, "account", data.accounts)
    store.upsert_records(crm, "contact", data.contacts)
    store.add_responses(data.responses)


def test_configured_salesforce_reads_the_state_mirror(tmp_path: Path, state_url: str) -> None:
    with StateStore.open(state_url) as store:
        _mirror(store, "salesforce")
    config = tmp_path / "ax.yaml"
    config.write_text(
        "crm: salesforce\n"
        "salesforce:\n  instance_url: https://acme.my.salesforce.com/\n"
        "report:\n  top_accounts: 2\n"
    )
    out = tmp_path / "r.html"
    result = runner.invoke(
        app,
        ["report", "--as-of", AS_OF, "--out", str(out), "--config", str(config)],
        env={"AX_STATE_URL": state_url},
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert _nps_card(page).startswith("NPS 35.7")
    tree = parse_strict(page)
    links = [a.get("href") for a in by_id(tree, "overdue-table").iter("a")]
    assert links == ["https://acme.my.salesforce.com/lightning/r/Account/A1/view"]
    tiers = text_of(next(by_id(tree, "chart-tiers").iter(f"{SVG}svg")))
    assert "Gamma AG" in tiers
    assert "Beta GmbH" not in tiers  # top 2 accounts by revenue only
    assert "salesforce CRM as last synced" in text_of(tree.find(".//header"))


def test_configured_crm_without_state_says_what_to_run(tmp_path: Path) -> None:
    config = tmp_path / "ax.yaml"
    config.write_text("crm: hubspot\n")
    state = tmp_path / "nothing-here.db"
    result = runner.invoke(
        app,
        ["report", "--out", str(tmp_path / "r.html"), "--config", str(config)],
        env={"AX_STATE_URL": f"sqlite:///{state}"},
    )
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert "ax-agent run --once" in result.stderr
    assert not state.exists()  # a report never creates a database


def test_configured_crm_with_an_empty_mirror_says_so(tmp_path: Path, sqlite_url: str) -> None:
    StateStore.open(sqlite_url).close()  # migrated, but nothing synced
    config = tmp_path / "ax.yaml"
    config.write_text("crm: hubspot\n")
    result = runner.invoke(
        app,
        ["report", "--out", str(tmp_path / "r.html"), "--config", str(config)],
        env={"AX_STATE_URL": sqlite_url},
    )
    assert result.exit_code == 2
    assert "no hubspot accounts in the state database" in result.stderr


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a folder where the report should go: the final rename fails
    result = runner.invoke(
        app, ["report", "--crm-dir", str(THREE), "--as-of", AS_OF, "--out", str(target)]
    )
    assert result.exit_code == 2
    assert f"cannot write {target}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]

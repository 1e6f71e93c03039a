"""``ax-agent history backfill`` and ``history show``: the stored points are the figures
``ax-agent metrics --as-of`` gives for their dates."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.core.timeutil import parse_instant
from agent.state.store import StateStore
from benchmarks.generate import AS_OF, generate, write_crm_folder

runner = CliRunner()
SINCE = AS_OF - timedelta(days=364)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_SECRETS_FILE", "AX_STATE_URL", "AX_CRM"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def crm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("crm") / "crm"
    return write_crm_folder(folder, generate(40, 260, 1500, seed=3))


def _invoke(args: list[str], state_url: str) -> Any:
    result = runner.invoke(app, args, env={"AX_STATE_URL": state_url})
    assert result.exit_code == 0, result.output
    return result


def _backfill(crm_dir: Path, state_url: str, every: str = "30d") -> str:
    args = ["history", "backfill", "--crm-dir", str(crm_dir), "--since", SINCE.isoformat()]
    args += ["--until", AS_OF.isoformat(), "--every", every]
    return str(_invoke(args, state_url).stdout)


def _show(crm_dir: Path, state_url: str, *extra: str) -> dict[str, Any]:
    args = ["history", "show", "--crm-dir", str(crm_dir), "--format", "json", *extra]
    return dict(json.loads(_invoke(args, state_url).stdout))


def test_every_backfilled_point_is_what_metrics_as_of_gives(crm_dir: Path, state_url: str) -> None:
    out = _backfill(crm_dir, state_url)
    assert "13 date(s), 0 already stored; stored 13 portfolio point(s)" in out
    history = _show(crm_dir, state_url)
    points = history["portfolio"]
    assert [p["as_of"] for p in points] == sorted(p["as_of"] for p in points)
    assert len(points) == 13
    rows_checked = 0
    in_force: dict[str, dict[str, Any]] = {}
    by_date: dict[str, dict[str, dict[str, Any]]] = {}
    for account_id, rows in history["accounts"].items():
        assert [r["as_of"] for r in rows] == sorted(r["as_of"] for r in rows)
        for row in rows:
            by_date.setdefault(row["as_of"], {})[account_id] = row
    for point in points:
        as_of = point["as_of"]
        metrics = json.loads(
            _invoke(["metrics", "--crm-dir", str(crm_dir), "--as-of", as_of], state_url).stdout
        )
        assert {"as_of": metrics["as_of"], **metrics["portfolio"]} == point
        for account in metrics["accounts"]:
            row = by_date.get(as_of, {}).get(account["id"])
            if row is not None:
                assert row == {"as_of": as_of, **account}
                in_force[account["id"]] = row
                rows_checked += 1
            else:  # unchanged since its last row (recency alone moves with the clock)
                last = in_force[account["id"]]
                for key in ("nps", "respondents", "health_status", "contacts", "revenue"):
                    assert last[key] == account[key], (account["id"], as_of, key)
    stored = sum(len(r) for r in history["accounts"].values())
    assert rows_checked == stored  # every stored row was compared
    assert stored < 13 * 40  # rows only when a figure changed


def test_a_second_backfill_stores_nothing_and_an_interrupted_one_resumes(
    crm_dir: Path, sqlite_url: str
) -> None:
    _backfill(crm_dir, sqlite_url, every="60d")  # dates 0, 60, ... 360: a subset of 30d's
    first = _show(crm_dir, sqlite_url)
    again = _backfill(crm_dir, sqlite_url, every="60d")
    assert "7 date(s), 7 already stored; stored 0 portfolio point(s) and 0 account row(s)" in again
    assert _show(crm_dir, sqlite_url) == first
    resumed = _backfill(crm_dir, sqlite_url, every="30d")  # the other dates, in between
    assert "13 date(s), 7 already stored; stored 6 portfolio point(s)" in resumed
    assert len(_show(crm_dir, sqlite_url)["portfolio"]) == 13


def test_show_one_account_as_csv_and_table(crm_dir: Path, sqlite_url: str) -> None:
    _backfill(crm_dir, sqlite_url, every="90d")
    history = _show(crm_dir, sqlite_url)
    account_id = next(iter(history["accounts"]))
    one = _show(crm_dir, sqlite_url, "--account", account_id)
    assert list(one["accounts"]) == [account_id]
    csv_out = _invoke(
        ["history", "show", "--crm-dir", str(crm_dir), "--account", account_id, "--format", "csv"],
        sqlite_url,
    ).stdout
    lines = csv_out.splitlines()
    assert lines[0].startswith("id,as_of,name,")
    assert len(lines) == 1 + len(one["accounts"][account_id])
    table = _invoke(["history", "show", "--crm-dir", str(crm_dir)], sqlite_url).stdout
    assert "Portfolio (5 points; coverage in %)" in table
    late = _show(crm_dir, sqlite_url, "--since", (AS_OF - timedelta(days=100)).isoformat())
    assert [parse_instant(p["as_of"]) for p in late["portfolio"]] == [
        AS_OF - timedelta(days=94),
        AS_OF - timedelta(days=4),
    ]


def test_bad_options_are_one_line_errors(crm_dir: Path, sqlite_url: str) -> None:
    base = ["history", "backfill", "--crm-dir", str(crm_dir)]
    for args, message in (
        ([*base, "--since", "yesterday"], "--since 'yesterday' is not an ISO 8601 instant"),
        ([*base, "--since", "2025-01-01", "--every", "weekly"], "--every: 'weekly' is not"),
        ([*base, "--since", "2025-02-01", "--until", "2025-01-01"], "is after --until"),
        (["history", "backfill", "--crm-dir", "nowhere", "--since", "2025-01-01"], "nowhere"),
        (
            ["history", "show", "--crm-dir", str(crm_dir), "--account", "nope"],
            "no history for account(s) nope",
        ),
    ):
        result = runner.invoke(app, args, env={"AX_STATE_URL": sqlite_url})
        assert result.exit_code == 2, result.output
        assert message in result.stderr
        assert "Traceback" not in result.output


def test_backfill_from_the_state_mirror(crm_dir: Path, sqlite_url: str, tmp_path: Path) -> None:
    from agent.sources.plainfiles import read_crm_folder

    data = read_crm_folder(crm_dir, AS_OF)
    with StateStore.open(sqlite_url) as store:
        store.upsert_records("hubspot", "account", data.accounts)
        store.upsert_records("hubspot", "contact", data.contacts)
        store.add_responses(data.responses)
    args = ["history", "backfill", "--since", SINCE.isoformat(), "--until", AS_OF.isoformat()]
    result = runner.invoke(app, args, env={"AX_STATE_URL": sqlite_url, "AX_CRM": "hubspot"})
    assert result.exit_code == 0, result.output
    assert "53 date(s), 0 already stored; stored 53 portfolio point(s)" in result.stdout
    shown = runner.invoke(
        app,
        ["history", "show", "--format", "json"],
        env={"AX_STATE_URL": sqlite_url, "AX_CRM": "hubspot"},
    )
    assert len(json.loads(shown.stdout)["portfolio"]) == 53

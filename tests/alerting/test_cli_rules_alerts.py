"""The rules and alerts commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_SECRETS_FILE", "AX_STATE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AX_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")


def test_validate_the_shipped_rules() -> None:
    result = runner.invoke(app, ["rules", "validate", str(REPO / "rules")])
    assert result.exit_code == 0, result.output
    assert "ok: 15 rule(s) in 3 file(s), 15 enabled" in result.output


def test_validate_the_shipped_rules_with_the_example_config() -> None:
    result = runner.invoke(
        app,
        [
            "rules",
            "validate",
            str(REPO / "rules"),
            "--config",
            str(REPO / "config/alerts.example.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output


def test_validate_fails_with_positions(tmp_path: Path) -> None:
    bad = tmp_path / "rules"
    shutil.copytree(REPO / "rules", bad)
    text = (bad / "accounts.yaml").read_text().replace("account.at_risk\n", "account.at_rsk\n", 1)
    (bad / "accounts.yaml").write_text(text)
    result = runner.invoke(app, ["rules", "validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad / 'accounts.yaml'}:7:11: unknown field account.at_rsk" in result.output
    assert "no rule was loaded" in result.output


def test_validate_reports_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "ax.yaml"
    config.write_text("slack:\n  default_channel: nowhere\n")
    result = runner.invoke(app, ["rules", "validate", str(REPO / "rules"), "--config", str(config)])
    assert result.exit_code == 2
    assert "default_channel 'nowhere' is not in slack.channels" in result.output


def test_silence_list_unsilence() -> None:
    made = runner.invoke(
        app, ["alerts", "silence", "--account", "A1", "--for", "7d", "--reason", "renewal talks"]
    )
    assert made.exit_code == 0, made.output
    assert made.output.startswith("silence 1 until ")
    listed = runner.invoke(app, ["alerts", "list"])
    assert "silences (1 active):" in listed.output
    assert "account=A1" in listed.output
    assert "renewal talks" in listed.output
    assert runner.invoke(app, ["alerts", "unsilence", "1"]).exit_code == 0
    assert "silences (0 active):" in runner.invoke(app, ["alerts", "list"]).output
    assert runner.invoke(app, ["alerts", "unsilence", "1"]).exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--for", "7d", "--reason", "x"], "give --account ID, --rule ID or both"),
        (["--rule", "r", "--for", "soon", "--reason", "x"], "is not a duration"),
        (["--rule", "r", "--for", "1d", "--reason", " "], "--reason must not be empty"),
    ],
)
def test_silence_refuses_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["alerts", "silence", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_rules_test_dry_run_on_the_fixture(tmp_path: Path) -> None:
    pytest.importorskip("agent.core.compute", reason="rules test needs the metrics core")
    pytest.importorskip("agent.sources.plainfiles", reason="rules test reads the plain-file CRM")
    crm = REPO / "tests/fixtures/seed_example"
    as_of = (crm / "as_of.txt").read_text().strip()
    result = runner.invoke(
        app,
        ["rules", "test", "--crm-dir", str(crm), "--as-of", as_of, "--rules", str(REPO / "rules")],
    )
    assert result.exit_code == 0, result.output
    assert "would send" in result.output
    assert "weekly-digest: 1" in result.output
    digest = result.output[result.output.index("Account Experience weekly digest") :]
    assert "\n    Revenue-weighted NPS: " in digest  # the figures the message carries
    assert "would be attached in Slack, in the message's thread" in digest
    assert not (tmp_path / "state.db").exists()  # sends nothing, stores nothing


def test_rules_test_runs_without_the_cycle_collector_and_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole preview is millions of acyclic objects at scale: the collector is paused
    through it (as for `metrics`) and running again after; no per-contact figures are
    computed, since no rule reads them."""
    import gc

    from agent.cli import rules_cmd

    seen: list[tuple[bool, int]] = []
    real = rules_cmd.preview_cycle

    def spy(pipeline_for, rules, inputs, now, state):  # type: ignore[no-untyped-def]
        seen.append((gc.isenabled(), len(inputs.document.contacts)))
        return real(pipeline_for, rules, inputs, now, state)

    monkeypatch.setattr(rules_cmd, "preview_cycle", spy)
    crm = REPO / "tests/fixtures/seed_example"
    as_of = (crm / "as_of.txt").read_text().strip()
    assert gc.isenabled()
    result = runner.invoke(
        app,
        ["rules", "test", "--crm-dir", str(crm), "--as-of", as_of, "--rules", str(REPO / "rules")],
    )
    assert result.exit_code == 0, result.output
    assert seen == [(False, 0)]
    assert gc.isenabled()


def test_rules_test_leaves_no_garbage_cycle_holding_the_computation() -> None:
    """The chart library's first import leaves reference cycles that hold their callers'
    frames. Loaded under the preview's frames, they kept every answer alive after the
    command's work, for the collector's next pass to scan (seconds at scale). The
    preview's chart attachment reads the report's figures, which do not load it. A fresh
    interpreter, since the library may be loaded in this one already."""
    import subprocess
    import sys

    crm = REPO / "tests/fixtures/seed_example"
    as_of = (crm / "as_of.txt").read_text().strip()
    script = f"""
import contextlib, gc, sys
from agent.cli import main, rules_cmd

@contextlib.contextmanager
def watched():
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        gc.set_debug(0)
        held = sum(type(o).__name__ == "MatchedResponse" for o in gc.garbage)
        print("answers held by garbage cycles:", held, file=sys.stderr)
        gc.enable()

rules_cmd.without_gc = watched
sys.argv = ["ax-agent", "rules", "test", "--crm-dir", {str(crm)!r}, "--as-of", {as_of!r},
            "--rules", {str(REPO / "rules")!r}]
main()
"""
    done = subprocess.run(  # our own interpreter and code
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert "would be attached in Slack" in done.stdout  # a chart was made
    assert "answers held by garbage cycles: 0" in done.stderr


def test_an_alerts_chart_attachment_does_not_load_the_chart_library() -> None:
    """The attachment carries the report's figures; the chart is drawn where it is
    delivered. The library (26 MB) stays out of a process that only decides alerts."""
    import subprocess
    import sys

    script = """
import sys
from agent.alerts.compose import chart_attachment
from agent.core.compute import compute_document
chart_attachment("driver_chart", compute_document([], [], []))
print("matplotlib" in sys.modules)
"""
    done = subprocess.run(  # our own interpreter and code
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"  # after the computation's log line

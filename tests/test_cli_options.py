"""Options of every command: --version, --log-level, --log-format; colours only on a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent import __version__
from agent.cli.common import hoist_log_options

FOLDER = Path(__file__).parent / "fixtures" / "three-accounts"
METRICS = ["metrics", "--crm-dir", str(FOLDER), "--as-of", "2025-06-01T12:00:00Z"]


def _ax(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_") and k != "NO_COLOR"}
    return subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_version() -> None:
    result = _ax("--version")
    assert result.returncode == 0
    assert result.stdout == f"ax-agent {__version__}\n"


def test_log_options_are_taken_after_the_command_too() -> None:
    default = _ax(*METRICS)
    assert '"event": "metrics.computed"' in default.stderr  # JSON lines: stderr is no terminal
    quiet = _ax(*METRICS, "--log-level", "error")
    assert quiet.returncode == 0
    assert "metrics.computed" not in quiet.stderr
    assert quiet.stdout == default.stdout
    console = _ax(*METRICS, "--log-format=console")
    assert "metrics.computed" in console.stderr
    assert '"event"' not in console.stderr
    assert "\x1b[" not in console.stderr  # no colour escapes: not a terminal
    before = _ax("--log-level", "error", *METRICS)
    assert "metrics.computed" not in before.stderr


def test_a_wrong_log_level_is_a_one_line_error() -> None:
    result = _ax(*METRICS, "--log-level", "loud")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --log-level 'loud': use one of debug, info, warning, error, critical"
    )


def test_hoisting_keeps_everything_else_in_place() -> None:
    assert hoist_log_options(["run", "--once", "--log-level", "debug", "--", "--log-format"]) == [
        "--log-level",
        "debug",
        "run",
        "--once",
        "--",
        "--log-format",
    ]


def test_the_demo_honours_the_log_options(tmp_path: Path) -> None:
    quiet = _ax("demo", "--dir", str(tmp_path / "a"))
    assert quiet.returncode == 0, quiet.stderr
    assert "surveys_ingested" not in quiet.stderr  # errors only unless a level is asked for
    chatty = _ax("demo", "--dir", str(tmp_path / "b"), "--log-level", "info")
    assert chatty.returncode == 0, chatty.stderr
    assert '"event": "surveys_ingested"' in chatty.stderr  # JSON lines: no terminal
    console = _ax(
        "--log-format", "console", "demo", "--dir", str(tmp_path / "c"), "--log-level=info"
    )
    assert "surveys_ingested" in console.stderr
    assert '"event"' not in console.stderr

"""The command line loads command modules lazily: every command listed and runnable,
``metrics`` started without the modules the other commands need."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agent.cli import COMMAND_MODULES, app

FIXTURES = Path(__file__).parent / "fixtures"
AX = Path(sys.executable).with_name("ax-agent")
runner = CliRunner()


def _registered_by(module_name: str) -> list[str]:
    holder = typer.Typer()
    importlib.import_module(f"agent.cli.{module_name}").register(holder)
    group = typer.main.get_group(holder)
    return list(group.commands)


def test_the_table_names_exactly_what_each_module_registers() -> None:
    by_table: dict[str, list[str]] = {}
    for name, module_name in COMMAND_MODULES.items():
        by_table.setdefault(module_name, []).append(name)
    for module_name, names in by_table.items():
        assert sorted(_registered_by(module_name)) == sorted(names), module_name


def test_help_lists_every_command_in_order() -> None:
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    positions = [result.output.find(f"│ {name} ") for name in COMMAND_MODULES]
    assert all(p > 0 for p in positions), result.output
    assert positions == sorted(positions)


def test_every_command_resolves_and_shows_its_help() -> None:
    for name in COMMAND_MODULES:
        result = runner.invoke(app, [name, "--help"], terminal_width=200)
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output, name


def test_an_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_metrics_imports_neither_charts_nor_database_nor_vendors() -> None:
    folder = FIXTURES / "three-accounts"
    as_of = (folder / "as_of.txt").read_text().strip()
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['ax-agent', 'metrics', '--crm-dir', sys.argv[1], '--as-of', sys.argv[2]]\n"
        "from agent.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    heavy = ('matplotlib', 'sqlalchemy', 'alembic', 'httpx', 'agent.state.store',\n"
        "             'agent.cli.run_cmd', 'agent.cli.report_cmd', 'agent.report')\n"
        "    sys.stderr.write(repr(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(folder), as_of],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("[]"), done.stderr
    expected = json.loads((folder / "expected.json").read_text())
    assert json.loads(done.stdout).keys() == expected.keys()


def test_the_installed_command_runs_metrics_and_a_lazily_loaded_group() -> None:
    folder = FIXTURES / "three-accounts"
    as_of = (folder / "as_of.txt").read_text().strip()
    done = subprocess.run(
        [str(AX), "metrics", "--crm-dir", str(folder), "--as-of", as_of],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    via_runner = runner.invoke(app, ["metrics", "--crm-dir", str(folder), "--as-of", as_of])
    assert json.loads(done.stdout) == json.loads(via_runner.stdout)
    group = subprocess.run(
        [str(AX), "rules", "--help"], capture_output=True, text=True, check=False
    )
    assert group.returncode == 0, group.stderr
    assert "validate" in group.stdout
    assert "test" in group.stdout


def test_packages_offer_their_names_and_load_each_home_on_first_use() -> None:
    """``agent.core.lazy``: every name a lazy package lists resolves to its module's
    own object; any other name is an AttributeError naming the package; in a fresh
    interpreter, importing the package loads none of the homes."""
    for package in ("agent.report", "connectors.salesforce", "connectors.hubspot"):
        module = importlib.import_module(package)
        for name in module.__all__:
            assert getattr(module, name) is not None, (package, name)
        with pytest.raises(AttributeError, match=repr(package)):
            module.no_such_name  # noqa: B018
    script = (
        "import sys, agent.report, connectors.salesforce, connectors.hubspot\n"
        "print(sorted(m for m in ('agent.report.html', 'matplotlib', 'simple_salesforce',"
        " 'hubspot') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"

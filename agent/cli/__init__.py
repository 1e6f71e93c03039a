"""The ``ax-agent`` command line. Each command group lives in its own module.

The command modules are imported lazily: running ``ax-agent metrics`` imports the module
of ``metrics`` alone, not the charts, the state database or the vendor connectors the
other commands need (importing them all costs more than a second of CPU at every start).
``ax-agent --help`` still lists every command: listing them imports every module.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from agent import __version__
from agent.cli.common import fail, hoist_log_options, set_log_options
from agent.cli.redacted import redact_standard_streams
from agent.core.errors import ConfigError, KnownError

__all__ = ["COMMAND_MODULES", "app", "main"]

#: Each top-level command, in the order ``--help`` lists them, and the module under
#: ``agent.cli`` whose ``register(app)`` adds it.
COMMAND_MODULES: dict[str, str] = {
    "metrics": "core_cmd",
    "demo": "core_cmd",
    "run": "run_cmd",
    "crm": "crm_cmd",
    "rules": "rules_cmd",
    "alerts": "alerts_cmd",
    "report": "report_cmd",
    "history": "history_cmd",
    "plan": "plan_cmd",
    "state": "state_cmd",
}


class _LazyGroup(TyperGroup):
    """The root group: a command's module is imported when the command is looked up."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return list(COMMAND_MODULES)

    def get_command(  # type: ignore[override]
        self, ctx: typer.Context, cmd_name: str
    ) -> TyperCommand | TyperGroup | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            self._load(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)  # type: ignore[return-value]

    def _load(self, module_name: str) -> None:
        module = importlib.import_module(f"agent.cli.{module_name}")
        holder = typer.Typer()
        module.register(holder)
        for name, command in typer.main.get_group(holder).commands.items():
            self.add_command(command, name)


app = typer.Typer(
    cls=_LazyGroup,
    name="ax-agent",
    help="B2B Account Experience agent: NPS with coverage, CRM write-back, Slack alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ax-agent {__version__}")
        raise typer.Exit


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="debug, info, warning, error or critical (any command; overrides log.level).",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="auto, json or console (any command; overrides log.format).",
        ),
    ] = None,
) -> None:
    """B2B Account Experience agent: NPS with coverage, CRM write-back, Slack alerts."""
    try:
        set_log_options(log_level, log_format)
    except ValueError as exc:
        raise fail(str(exc)) from None


def main() -> None:
    """Console-script entry point: every byte printed goes through the redaction step.

    ``--log-level`` and ``--log-format`` are taken wherever they are written, before or
    after the command's name (``ax-agent run --once --log-level debug``).
    """
    redact_standard_streams()
    try:
        app(args=hoist_log_options(sys.argv[1:]), prog_name="ax-agent")
    except KnownError as exc:  # a command that let one through: its message, no traceback
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2 if isinstance(exc, ConfigError) else 1) from None

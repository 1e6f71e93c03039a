"""The ``ax-agent`` command line. Each command group lives in its own module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from agent import __version__
from agent.cli import (
    alerts_cmd,
    core_cmd,
    crm_cmd,
    history_cmd,
    plan_cmd,
    report_cmd,
    rules_cmd,
    run_cmd,
    state_cmd,
)
from agent.cli.common import fail, hoist_log_options, set_log_options
from agent.cli.redacted import redact_standard_streams
from agent.core.errors import ConfigError, KnownError

__all__ = ["app", "main"]

app = typer.Typer(
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


for _module in (
    core_cmd,
    run_cmd,
    crm_cmd,
    rules_cmd,
    alerts_cmd,
    report_cmd,
    history_cmd,
    plan_cmd,
    state_cmd,
):
    _module.register(app)


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

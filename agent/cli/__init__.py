"""The ``ax-agent`` command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

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
from agent.cli.redacted import redact_standard_streams

__all__ = ["app", "main"]

app = typer.Typer(
    name="ax-agent",
    help="B2B Account Experience agent: NPS with coverage, CRM write-back, Slack alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

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
    """Console-script entry point: every byte printed goes through the redaction step."""
    redact_standard_streams()
    app()

"""What every command shares: loading settings, one-line errors, ``--as-of`` and ``--config``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agent.config.logging import configure_from_settings
from agent.config.settings import ConfigError, Settings, load_settings
from agent.core.timeutil import parse_instant, utcnow

__all__ = ["AsOfOption", "ConfigOption", "as_of_value", "cli_settings", "fail"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="YAML config file (default: AX_CONFIG or config/ax-agent.yaml)."),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="ISO 8601 instant to compute at (default now)."),
]


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr; the caller raises the returned exit (code 2)."""
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def cli_settings(config: Path | None, **overrides: Any) -> Settings:
    """Validated settings, with logs configured (stderr) and secrets registered for masking.

    An invalid configuration ends the command with exit 2 and the admin-readable reasons.
    """
    try:
        settings = load_settings(config, **overrides)
    except ConfigError as exc:
        Console(stderr=True).print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    configure_from_settings(settings)
    return settings


def as_of_value(text: str | None) -> datetime:
    """The ``--as-of`` option as an aware datetime, or exit 2 saying what is wrong."""
    if text is None:
        return utcnow()
    try:
        return parse_instant(text)
    except ValueError:
        example = "2025-06-01T12:00:00Z"
        raise fail(f"--as-of {text!r} is not an ISO 8601 instant (e.g. {example})") from None

"""What every command shares: loading settings, one-line errors, ``--as-of`` and ``--config``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from agent.config.logging import configure_from_settings
from agent.config.settings import ConfigError, Settings, load_settings
from agent.core.timeutil import parse_instant, utcnow

if TYPE_CHECKING:
    from agent.state.store import StateStore

__all__ = [
    "LOG_OPTIONS",
    "AsOfOption",
    "ConfigOption",
    "as_of_value",
    "cli_settings",
    "fail",
    "hoist_log_options",
    "set_log_options",
]

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


LOG_OPTIONS = ("--log-level", "--log-format")
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_LOG_FORMATS = ("auto", "json", "console")


def hoist_log_options(args: list[str]) -> list[str]:
    """``args`` with ``--log-level``/``--log-format`` moved before the command.

    They belong to every command; the root command reads them, wherever they were given.
    """
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in LOG_OPTIONS:
            if "=" in arg:
                hoisted.append(arg)
            elif i + 1 < len(args):
                hoisted.extend(args[i : i + 2])
                i += 1
            else:
                hoisted.append(arg)  # the root command says the value is missing
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


def set_log_options(level: str | None, log_format: str | None) -> None:
    """Make ``--log-level``/``--log-format`` win over the config (as ``AX_LOG__*`` would)."""
    if level is not None:
        if level.lower() not in _LOG_LEVELS:
            raise ValueError(f"--log-level {level!r}: use one of {', '.join(_LOG_LEVELS)}")
        os.environ["AX_LOG__LEVEL"] = level.lower()
    if log_format is not None:
        if log_format.lower() not in _LOG_FORMATS:
            raise ValueError(f"--log-format {log_format!r}: use one of {', '.join(_LOG_FORMATS)}")
        os.environ["AX_LOG__FORMAT"] = log_format.lower()


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


@contextmanager
def existing_state(settings: Settings) -> Iterator[StateStore | None]:
    """The configured state database when it exists at the current schema; else None.

    For commands that only read what the agent stored (the figure history): they never
    create or migrate a database.
    """
    # The state database (SQLAlchemy) is imported here: most commands never open it.
    from agent.state.dialect import normalise_url, sqlite_path  # noqa: PLC0415
    from agent.state.errors import StateError  # noqa: PLC0415
    from agent.state.store import StateStore  # noqa: PLC0415

    database = sqlite_path(normalise_url(settings.state_url))
    if database is not None and not database.is_file():
        yield None
        return
    try:
        store = StateStore.open(settings.state_url, migrate_schema=False)
    except StateError:
        yield None
        return
    with store:
        yield store

"""``ax-agent metrics`` and ``ax-agent demo``: the figures of a CRM folder, by hand."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.demo import run_demo
from agent.folder import FolderError, compute_folder
from agent.present import render_document
from agent.settings import ConfigError, load_settings
from agent.timeutil import parse_instant, utcnow

__all__ = ["register"]


class OutputFormat(StrEnum):
    json = "json"
    table = "table"


ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config file (default config/ax-agent.yaml).")
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="ISO 8601 instant the figures are computed at (default now)."),
]


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr; the caller raises the returned exit (code 2)."""
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def as_of_value(text: str | None) -> datetime:
    """The ``--as-of`` option as an aware datetime, or exit 2 saying what is wrong."""
    if text is None:
        return utcnow()
    try:
        return parse_instant(text)
    except ValueError:
        raise fail(
            f"--as-of {text!r} is not an ISO 8601 instant (e.g. 2025-06-01T12:00:00Z)"
        ) from None


def metrics(
    crm_dir: Annotated[
        Path, typer.Option("--crm-dir", help="Plain-file CRM folder (DOMAIN.md format).")
    ],
    as_of: AsOfOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="json or table.")
    ] = OutputFormat.json,
    config: ConfigOption = None,
) -> None:
    """Print the metrics document of a CRM folder (JSON, or a readable table)."""
    when = as_of_value(as_of)
    try:
        settings = load_settings(config)
        doc = compute_folder(crm_dir, as_of=when, config=settings.metrics)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except FolderError as exc:
        raise fail(str(exc)) from None
    if output is OutputFormat.json:
        typer.echo(json.dumps(doc.to_json_obj(), indent=1, ensure_ascii=False))
    else:
        render_document(doc, Console())


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo CRM folder and its state file go.")
    ] = Path("ax-demo"),
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start over: new sample, empty state.")
    ] = False,
) -> None:
    """Run one full cycle on a shipped sample portfolio: no credentials, no network."""
    run_demo(directory, fresh=fresh, console=Console())


def register(app: typer.Typer) -> None:
    """Add ``metrics`` and ``demo`` to ``app``."""
    app.command("metrics")(metrics)
    app.command("demo")(demo)

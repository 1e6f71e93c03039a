"""``ax-agent metrics`` and ``ax-agent demo``: the figures of a CRM folder, by hand."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from agent.cli.common import AsOfOption, ConfigOption, as_of_value, cli_settings, fail
from agent.core.compute import without_gc
from agent.sources.folder import FolderError, compute_folder

# ``demo`` and the table format import rich, matplotlib and the state database: they are
# imported where they are used, so that ``metrics --format json`` starts without them.

__all__ = ["register"]


class OutputFormat(StrEnum):
    json = "json"
    table = "table"


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
    settings = cli_settings(config)
    # The whole command allocates millions of acyclic objects (rows, responses, one dict
    # per account and row of the document): the cycle collector's scans would find nothing.
    with without_gc():
        try:
            # the per-contact figures are for write-back: neither format shows them
            doc = compute_folder(
                crm_dir, as_of=when, config=settings.metrics, contact_figures=False
            ).document
        except FolderError as exc:
            raise fail(str(exc)) from None
        if output is OutputFormat.json:
            # Indented for a person at a terminal; compact when piped (the C encoder: at
            # 50k accounts the indenting encoder alone takes seconds).
            indent = 1 if sys.stdout.isatty() else None
            text = json.dumps(doc.to_json_obj(), indent=indent, ensure_ascii=False)
            typer.echo(text)
            return
    from rich.console import Console  # noqa: PLC0415

    from agent.report.present import render_document  # noqa: PLC0415

    list_all = f"ax-agent metrics --crm-dir {crm_dir} --as-of {when.isoformat()} --format json"
    render_document(doc, Console(), list_all=list_all)


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo CRM folder and its state file go.")
    ] = Path("ax-demo"),
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start over: new sample, empty state.")
    ] = False,
) -> None:
    """Run one full cycle on a shipped sample portfolio: no credentials, no network."""
    from rich.console import Console  # noqa: PLC0415

    from agent.cli.demo import run_demo  # noqa: PLC0415

    run_demo(directory, fresh=fresh, console=Console())


def register(app: typer.Typer) -> None:
    """Add ``metrics`` and ``demo`` to ``app``."""
    app.command("metrics")(metrics)
    app.command("demo")(demo)

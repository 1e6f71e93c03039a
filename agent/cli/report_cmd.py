"""``ax-agent report``: the portfolio report as one self-contained HTML file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import structlog
import typer

from agent.cli.core_cmd import AsOfOption, ConfigOption, as_of_value, fail
from agent.compute import compute_document
from agent.document import MetricsDocument
from agent.folder import FolderError
from agent.models import Account
from agent.plainfiles import read_crm_folder
from agent.report import ReportOptions, build_report, record_url_template
from agent.settings import ConfigError, Settings, load_settings

__all__ = ["register"]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Portfolio:
    doc: MetricsDocument
    accounts: list[Account]
    source: str
    crm: str


def report(
    out: Annotated[Path, typer.Option("--out", help="Where to write the HTML report.")],
    crm_dir: Annotated[
        Path | None,
        typer.Option("--crm-dir", help="Plain-file CRM folder (default: the configured CRM)."),
    ] = None,
    as_of: AsOfOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the portfolio report: headline figures, coverage, drivers, tiers, upsell, lists."""
    when = as_of_value(as_of)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    portfolio = _portfolio(crm_dir, settings, when)
    options = ReportOptions(
        record_url=record_url_template(settings, crm=portfolio.crm),
        top_accounts=settings.report.top_accounts,
        source=portfolio.source,
        config=settings.metrics,
    )
    html = build_report(portfolio.doc, portfolio.accounts, options)
    size = _write(out, html)
    _log.info("report.written", path=str(out), bytes=size, accounts=len(portfolio.accounts))
    typer.echo(
        f"wrote {out} ({size:,} bytes): {portfolio.doc.portfolio.accounts} accounts "
        f"as of {portfolio.doc.as_of.isoformat()}"
    )


def _portfolio(crm_dir: Path | None, settings: Settings, when: datetime) -> _Portfolio:
    """The document and accounts of ``--crm-dir``, else of the configured CRM."""
    if crm_dir is not None:
        return _from_folder(crm_dir, settings, when, crm="files")
    if settings.crm == "files":
        return _from_folder(settings.files.path, settings, when, crm="files")
    raise fail(
        f"a report over the {settings.crm} CRM needs the agent's state, which this build "
        "cannot read yet; export the CRM to a folder and pass --crm-dir"
    )


def _from_folder(folder: Path, settings: Settings, when: datetime, *, crm: str) -> _Portfolio:
    try:
        data = read_crm_folder(folder, when)
    except FolderError as exc:
        raise fail(str(exc)) from None
    doc = compute_document(
        data.accounts,
        data.contacts,
        data.responses,
        as_of=when,
        config=settings.metrics,
        rejected=data.rejected,
    )
    return _Portfolio(doc, data.accounts, f"CRM folder {folder}", crm)


def _write(out: Path, html: str) -> int:
    """Write atomically (a half-written report never replaces a good one); return bytes."""
    data = html.encode("utf-8")
    if not out.parent.is_dir():
        raise fail(f"cannot write {out}: folder {out.parent} does not exist")
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(out)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise fail(f"cannot write {out}: {exc.strerror or exc}") from None
    return len(data)


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command("report")(report)

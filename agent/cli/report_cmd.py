"""``ax-agent report``: the portfolio report as one self-contained HTML file."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import structlog
import typer

from agent.cli.common import (
    AsOfOption,
    ConfigOption,
    as_of_value,
    cli_settings,
    existing_state,
    fail,
)
from agent.config.settings import Settings
from agent.core.document import MetricsDocument
from agent.core.models import Account
from agent.core.plan import CoveragePlan
from agent.report import ReportOptions, build_report, record_url_template
from agent.report.trends import load_history
from agent.sources.folder import FolderError
from agent.state.dialect import normalise_url, sqlite_path
from agent.state.errors import MirrorBusyError, StateError
from agent.state.history import HistoryRepo
from agent.state.store import StateStore
from agent.sync.coverage import options_from, plan_for_folder, plan_for_state
from agent.tasks.repo import TaskRepo

__all__ = ["register"]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Portfolio:
    doc: MetricsDocument
    accounts: list[Account]
    source: str
    crm: str
    plan: CoveragePlan


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
    if not out.parent.is_dir():  # say so before any work is done
        raise fail(f"cannot write {out}: folder {out.parent} does not exist")
    settings = cli_settings(config)
    portfolio = _portfolio(crm_dir, settings, when)
    options = ReportOptions(
        record_url=record_url_template(settings, crm=portfolio.crm),
        top_accounts=settings.report.top_accounts,
        list_limit=settings.report.list_limit,
        source=portfolio.source,
        config=settings.metrics,
        plan=portfolio.plan,
    )
    doc = portfolio.doc
    with existing_state(settings) as store:
        if store is not None:
            history = load_history(HistoryRepo(store), portfolio.crm, doc.as_of)
            options = replace(options, history=history)
            if _keeps_tasks(settings, crm_dir):
                doc = _with_tasks(doc, store, portfolio.crm, settings)
    html = build_report(doc, portfolio.accounts, options)
    size = _write(out, html)
    _log.info("report.written", path=str(out), bytes=size, accounts=len(portfolio.accounts))
    typer.echo(
        f"wrote {out} ({size:,} bytes): {portfolio.doc.portfolio.accounts} accounts "
        f"as of {portfolio.doc.as_of.isoformat()}"
    )


def _keeps_tasks(settings: Settings, crm_dir: Path | None) -> bool:
    """Whether the state's CRM tasks belong to this report: tasks are on, and the report
    is of the configured CRM (another folder's report has no task list of its own)."""
    if not settings.tasks.enabled:
        return False
    if crm_dir is None:
        return True
    return settings.crm == "files" and crm_dir.resolve() == settings.files.path.resolve()


def _with_tasks(
    doc: MetricsDocument, store: StateStore, crm: str, settings: Settings
) -> MetricsDocument:
    """The document with its ``tasks`` section, when the agent recorded any task."""
    sla = timedelta(hours=settings.metrics.loop_sla_hours)
    tasks = TaskRepo(store.engine, crm).figures(doc.as_of, sla)
    return replace(doc, tasks=tasks) if tasks.recorded else doc


def _portfolio(crm_dir: Path | None, settings: Settings, when: datetime) -> _Portfolio:
    """The document and accounts of ``--crm-dir``, else of the configured CRM."""
    if crm_dir is not None:
        return _from_folder(crm_dir, settings, when)
    if settings.crm == "files":
        return _from_folder(settings.files.path, settings, when)
    return _from_state(settings, when)


def _from_folder(folder: Path, settings: Settings, when: datetime) -> _Portfolio:
    options = options_from(settings.plan)
    try:
        computed, plan = plan_for_folder(folder, when, settings.metrics, options)
    except FolderError as exc:
        raise fail(str(exc)) from None
    source = f"CRM folder {folder}"
    return _Portfolio(computed.document, computed.accounts, source, "files", plan)


def _from_state(settings: Settings, when: datetime) -> _Portfolio:
    """The configured CRM as the agent last mirrored it (``ax-agent run`` keeps it fresh)."""
    try:
        database = sqlite_path(normalise_url(settings.state_url))
        if database is not None and not database.is_file():  # opening would create it
            raise StateError(f"state database {database} does not exist")
        store = StateStore.open(settings.state_url, migrate_schema=False)
    except StateError as exc:
        raise fail(f"{exc}; run `ax-agent run --once` first") from None
    with store:
        options = options_from(settings.plan)
        try:
            computed, plan = plan_for_state(store, settings.crm, when, settings.metrics, options)
        except MirrorBusyError as exc:
            raise fail(str(exc)) from None
        where = store.safe_url
    if not computed.accounts:
        raise fail(
            f"no {settings.crm} accounts in the state database {where}; "
            "run `ax-agent run --once` first, or pass --crm-dir"
        )
    source = f"{settings.crm} CRM as last synced into {where}"
    return _Portfolio(computed.document, computed.accounts, source, settings.crm, plan)


def _write(out: Path, html: str) -> int:
    """Write atomically (a half-written report never replaces a good one); return bytes."""
    data = html.encode("utf-8")
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

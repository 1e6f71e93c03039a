"""``ax-agent history``: rebuild the figure history from responses, and read it.

``backfill`` computes the metrics document as of each date of a grid from the stored
responses and today's accounts and contacts (a past revenue or contact list cannot be
known), and stores the points as a cycle would. It skips dates already stored, so it
resumes where an interrupted run stopped and a second run stores nothing new.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.table import Table

from agent.cli.common import ConfigOption, cli_settings, fail
from agent.cli.progress import backfill_progress
from agent.config.settings import Settings
from agent.core.compute import compute_document
from agent.core.document import MetricsDocument
from agent.core.durations import DurationError, parse_duration
from agent.core.rounding import format_number
from agent.core.timeutil import parse_instant, utcnow
from agent.sources.folder import FolderError, compute_folder
from agent.state.errors import MirrorBusyError, StateError
from agent.state.history import HistoryRepo, retention_of
from agent.state.store import StateStore

__all__ = ["history_document", "register"]

_log = structlog.get_logger(__name__)

history_app = typer.Typer(
    help="The figure history: backfill it from responses, show it.", no_args_is_help=True
)

CrmDirOption = Annotated[
    Path | None,
    typer.Option(
        "--crm-dir",
        help="Plain-file CRM folder (its history is kept as the 'files' CRM's).",
    ),
]


class ShowFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def register(app: typer.Typer) -> None:
    """Add the ``history`` command group to ``app``."""
    app.add_typer(history_app, name="history")


def _instant(option: str, text: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError:
        raise fail(
            f"{option} {text!r} is not an ISO 8601 instant (e.g. 2025-06-01T00:00:00Z)"
        ) from None


@contextmanager
def _store(settings: Settings) -> Iterator[StateStore]:
    try:
        store = StateStore.open(settings.state_url)
    except StateError as exc:
        raise fail(str(exc)) from None
    with store:
        yield store


def grid(since: datetime, until: datetime, every: timedelta) -> list[datetime]:
    """``since``, ``since + every``, ... up to and including ``until``."""
    dates: list[datetime] = []
    at = since
    while at <= until:
        dates.append(at)
        at += every
    return dates


@dataclass(frozen=True, slots=True)
class _Source:
    crm: str
    compute: Callable[[datetime], MetricsDocument]


def _source(crm_dir: Path | None, settings: Settings, store: StateStore) -> _Source:
    """How to compute the document at a date: a CRM folder read afresh, or the mirror."""
    folder = crm_dir or (settings.files.path if settings.crm == "files" else None)
    if folder is not None:
        crm = "files"

        def from_folder(at: datetime) -> MetricsDocument:
            try:
                return compute_folder(folder, as_of=at, config=settings.metrics).document
            except FolderError as exc:
                raise fail(str(exc)) from None

        if not folder.is_dir():  # said before any work
            raise fail(f"CRM folder {folder} does not exist")
        return _Source(crm, from_folder)
    try:  # never halfway through a full read
        accounts, contacts = store.load_mirror(settings.crm)
    except MirrorBusyError as exc:
        raise fail(str(exc)) from None
    if not accounts:
        raise fail(
            f"no {settings.crm} accounts in the state database {store.safe_url}; "
            "run `ax-agent run --once` first, or pass --crm-dir"
        )
    responses = store.load_responses()

    def from_state(at: datetime) -> MetricsDocument:
        return compute_document(accounts, contacts, responses, as_of=at, config=settings.metrics)

    return _Source(settings.crm, from_state)


@history_app.command("backfill")
def backfill_cmd(
    since: Annotated[str, typer.Option("--since", help="First date (ISO 8601).")],
    until: Annotated[
        str | None, typer.Option("--until", help="Last date (ISO 8601; default now).")
    ] = None,
    every: Annotated[
        str, typer.Option("--every", help="Step between dates: 1d, 7d, 2w ...")
    ] = "7d",
    crm_dir: CrmDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Store the figures as of every date from --since to --until, one each --every.

    Accounts, revenue and contacts are today's (a backfill cannot know past ones);
    responses count by their own timestamps. Dates already stored are skipped.
    """
    start = _instant("--since", since)
    end = utcnow() if until is None else _instant("--until", until)
    try:
        step = parse_duration(every)
    except DurationError as exc:
        raise fail(f"--every: {exc}") from None
    if start > end:
        raise fail(f"--since {since} is after --until {until or 'now'}")
    settings = cli_settings(config)
    retention = retention_of(settings.history)
    with _store(settings) as store:
        source = _source(crm_dir, settings, store)
        repo = HistoryRepo(store)
        dates = grid(start, end, step)
        todo = [d for d in dates if not repo.has_point(source.crm, d)]
        stored_accounts = stored_points = 0
        with backfill_progress(len(dates), len(dates) - len(todo)) as advance:
            for at in todo:
                recorded = repo.record(source.crm, source.compute(at))
                stored_accounts += recorded.accounts
                stored_points += recorded.portfolio
                advance(at, recorded.accounts)
        thinned = repo.thin(source.crm, utcnow(), retention)
    typer.echo(
        f"{len(dates)} date(s), {len(dates) - len(todo)} already stored; stored "
        f"{stored_points} portfolio point(s) and {stored_accounts} account row(s)"
        + (f"; thinned {thinned} old point(s)" if thinned else "")
    )


def history_document(
    repo: HistoryRepo,
    crm: str,
    *,
    accounts: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The JSON of ``history show``: portfolio points and per-account rows, oldest first."""
    return {
        "portfolio": [
            {"as_of": at.isoformat(), **figures}
            for at, figures in repo.portfolio(crm, since, until)
        ],
        "accounts": {
            account_id: [{"as_of": at.isoformat(), **figures} for at, figures in points]
            for account_id, points in sorted(repo.accounts(crm, accounts, since, until).items())
        },
    }


_PORTFOLIO_COLUMNS = {
    "nps": "NPS",
    "nps_strict": "strict",
    "account_coverage": "accounts",
    "revenue_coverage": "revenue",
    "closed_loop_rate": "closed loop",
    "at_risk_accounts": "at risk",
}
_ACCOUNT_COLUMNS = {
    "health_score": "health",
    "health_status": "status",
    "nps": "NPS",
    "nps_strict": "strict",
    "respondents": "answered",
}


def _when(text: str) -> str:
    return text[:16].replace("T", " ")


@history_app.command("show")
def show_cmd(  # noqa: PLR0917  # typer passes every option by keyword
    account: Annotated[
        list[str] | None,
        typer.Option("--account", help="Only this account id (repeat for several)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Points from this instant (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Points up to this instant (ISO 8601).")
    ] = None,
    output: Annotated[
        ShowFormat, typer.Option("--format", help="table, json or csv.")
    ] = ShowFormat.table,
    crm_dir: CrmDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Show the stored history: portfolio points and, per account, each change."""
    start = None if since is None else _instant("--since", since)
    end = None if until is None else _instant("--until", until)
    settings = cli_settings(config)
    crm = "files" if crm_dir is not None else settings.crm
    with _store(settings) as store:
        document = history_document(
            HistoryRepo(store), crm, accounts=account or None, since=start, until=end
        )
    if account:
        missing = [a for a in account if a not in document["accounts"]]
        if missing:
            raise fail(f"no history for account(s) {', '.join(missing)} in the {crm} history")
    if output is ShowFormat.json:
        typer.echo(json.dumps(document, indent=1, ensure_ascii=False))
    elif output is ShowFormat.csv:
        _write_csv(document, by_account=bool(account))
    else:
        _print_tables(document, by_account=bool(account))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _write_csv(document: dict[str, Any], *, by_account: bool) -> None:
    """Portfolio points, or with --account one row per account change (account_id first)."""
    out = csv.writer(sys.stdout, lineterminator="\n")
    if by_account:
        rows = [p for points in document["accounts"].values() for p in points]
    else:
        rows = document["portfolio"]
    if not rows:
        return
    keys = list(rows[0])
    if by_account:
        keys = ["id", "as_of", *[k for k in keys if k not in ("id", "as_of")]]
    out.writerow(keys)
    for row in rows:
        out.writerow([_cell(row.get(k)) for k in keys])


def _number(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if key.endswith(("coverage", "rate")):
            return f"{format_number(100 * value, 1)}%"
        return format_number(value, 1)
    return str(value)


def _print_tables(document: dict[str, Any], *, by_account: bool) -> None:
    console = Console()
    if not by_account:
        table = Table(title=f"Portfolio ({len(document['portfolio'])} points; coverage in %)")
        for name in ("as of (UTC)", *_PORTFOLIO_COLUMNS.values()):
            table.add_column(name, no_wrap=True)
        for point in document["portfolio"]:
            cells = (_number(k, point.get(k)) for k in _PORTFOLIO_COLUMNS)
            table.add_row(_when(point["as_of"]), *cells)
        console.print(table)
        console.print(f"{len(document['accounts'])} account(s) with history; see --account ID")
        return
    for account_id, points in document["accounts"].items():
        name = points[-1].get("name", "") if points else ""
        table = Table(title=f"{account_id} {name} ({len(points)} changes)")
        for column in ("as of (UTC)", *_ACCOUNT_COLUMNS.values()):
            table.add_column(column, no_wrap=True)
        for point in points:
            cells = (_number(k, point.get(k)) for k in _ACCOUNT_COLUMNS)
            table.add_row(_when(point["as_of"]), *cells)
        console.print(table)

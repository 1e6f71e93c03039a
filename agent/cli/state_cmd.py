"""``ax-agent state``: migrate the state database and show what it holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from agent.cli.common import cli_settings
from agent.state import migrate
from agent.state.dialect import normalise_url, sqlite_path
from agent.state.errors import StateError
from agent.state.leader_epoch import Fence, LeaderInfo
from agent.state.schema import metadata
from agent.state.store import StateStore

__all__ = ["register"]

state_app = typer.Typer(
    help="The state database: migrations and what it holds.", no_args_is_help=True
)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="State database URL (default: AX_STATE_URL or state_url)."),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config file (default: AX_CONFIG).")
]


def register(app: typer.Typer) -> None:
    """Add the ``state`` command group to ``app``."""
    app.add_typer(state_app, name="state")


@state_app.command("upgrade")
def upgrade_cmd(url: UrlOption = None, config: ConfigOption = None) -> None:
    """Create or migrate the state database to the newest schema revision."""
    target = _url(url, config)
    try:
        with StateStore.open(target) as store:
            typer.echo(f"state database {store.safe_url} is at revision {store.revision()}")
    except StateError as exc:
        _fail(str(exc))


@state_app.command("show")
def show_cmd(
    url: UrlOption = None,
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(help="How many recent cycles to list.")] = 10,
    output: Annotated[
        Literal["table", "json"], typer.Option("--format", help="table or json.")
    ] = "table",
) -> None:
    """Show the schema revision, leader, row counts, cursors and recent cycles."""
    target = _url(url, config)
    try:
        report = _report(target, limit)
    except StateError as exc:
        _fail(str(exc))
    if output == "json":
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        report.print(Console())


@dataclass(frozen=True, slots=True)
class _Report:
    url: str
    revision: str | None
    head: str
    leader: str | None
    #: The leadership row: host, pid, epoch, lease expiry (None before any agent led).
    leadership: dict[str, Any] | None
    rows: dict[str, int]
    cursors: list[dict[str, str]]
    cycles: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "revision": self.revision,
            "head": self.head,
            "leader": self.leader,
            "leadership": self.leadership,
            "rows": self.rows,
            "cursors": self.cursors,
            "cycles": self.cycles,
        }

    def print(self, console: Console) -> None:
        behind = "" if self.revision == self.head else f" (newest: {self.head})"
        console.print(f"[bold]{self.url}[/] at revision {self.revision or 'none'}{behind}")
        console.print(f"leader: {self.leader or 'none'}")
        console.print(
            _table("rows", ["table", "rows"], [[k, str(v)] for k, v in self.rows.items()])
        )
        cursor_rows = [[c["source"], c["stream"], _cursor_text(c["value"])] for c in self.cursors]
        console.print(_table("cursors", ["source", "stream", "value"], cursor_rows))
        cycle_rows = [
            [
                str(c["id"]),
                c["job"],
                c["started_at"],
                c["status"],
                f"{c['replica'] or ''} {c['epoch'] if c['epoch'] is not None else ''}".strip(),
                _counts(c["counts"]),
                c["error"] or "",
            ]
            for c in self.cycles
        ]
        console.print(
            _table(
                "recent cycles",
                ["id", "job", "started", "status", "replica epoch", "counts", "error"],
                cycle_rows,
            )
        )


def _report(url: str, limit: int) -> _Report:
    path = sqlite_path(normalise_url(url))
    if path is not None and not path.exists():
        raise StateError(f"no state database at {path}: run `ax-agent state upgrade` to create it")
    store = StateStore.open(url, migrate_schema=False)
    with store:
        lock_holder = store.leadership().holder()
        current = Fence(store.engine).current()
        with store.reading() as tx:
            rows = {
                name: int(
                    tx.connection.execute(select(func.count()).select_from(table)).scalar_one()
                )
                for name, table in sorted(metadata.tables.items())
            }
        return _Report(
            url=store.safe_url,
            revision=store.revision(),
            head=migrate.head_revision(),
            leader=_leader(current, lock_holder),
            leadership=current.as_json() if current is not None else None,
            rows=rows,
            cursors=[
                {"source": s, "stream": t, "value": v}
                for (s, t), v in sorted(store.all_cursors().items())
            ],
            cycles=[
                {
                    "id": c.id,
                    "job": c.job,
                    "started_at": c.started_at.isoformat(),
                    "finished_at": c.finished_at.isoformat() if c.finished_at else None,
                    "status": c.status,
                    "counts": dict(c.counts),
                    "error": c.error,
                    "replica": c.replica,
                    "epoch": c.epoch,
                }
                for c in store.recent_cycles(limit)
            ],
        )


def _leader(current: LeaderInfo | None, lock_holder: str | None) -> str | None:
    """The leader as an operator reads it: host, pid, epoch, lease expiry, lock session."""
    if current is None or current.epoch == 0:
        return lock_holder
    text = current.describe()
    return f"{text}; lock held by {lock_holder}" if lock_holder else f"{text}; lock not held"


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    return table


def _cursor_text(value: str) -> str:
    """A cursor as a person reads it: a CRM watermark says where the next read starts
    and how many records it remembers from the overlap (the JSON output keeps it all)."""
    try:
        body = json.loads(value) if value.startswith("{") else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or "since" not in body:
        return value
    seen = body.get("seen") or {}
    return f"since {body['since']}" + (f", {len(seen)} seen" if seen else "")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def _url(url: str | None, config: Path | None) -> str:
    """The state URL (option, else settings); configures logs to stderr on the way."""
    return cli_settings(config, **({"state_url": url} if url else {})).state_url


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)

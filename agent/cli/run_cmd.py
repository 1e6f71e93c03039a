"""``ax-agent run``: the long-running agent (or one pass of every job with ``--once``)."""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path
from typing import Annotated

import structlog
import typer

from agent.cli.common import as_of_value, cli_settings, fail
from agent.cli.progress import sync_progress
from agent.config.settings import Settings
from agent.core.timeutil import pin_now
from agent.service.process import AgentProcess
from agent.state.errors import LeadershipError, StateError
from agent.state.leader import Leadership, leadership_for
from agent.state.store import StateStore

__all__ = ["register", "start"]

_log = structlog.get_logger(__name__)

#: Exit status when the agent cannot start (configuration, state, another leader).
CANNOT_START = 2


def start(
    settings: Settings,
    *,
    once: bool = False,
    dry_run: bool = False,
    full: bool = False,
    as_of: datetime | None = None,
) -> int:
    """Run the agent as configured; returns the process exit status."""
    leadership = leadership_for(settings.state_url)
    try:
        if once or not leadership.can_stand_by:
            leadership.acquire(wait=False)  # refused at once when another agent leads
        store = StateStore.open(settings.state_url)
    except (LeadershipError, StateError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return CANNOT_START
    try:
        return _run(settings, store, leadership, once=once, dry_run=dry_run, full=full, as_of=as_of)
    finally:
        leadership.release()
        store.close()


def _run(
    settings: Settings,
    store: StateStore,
    leadership: Leadership,
    *,
    once: bool,
    dry_run: bool,
    full: bool,
    as_of: datetime | None,
) -> int:
    try:
        agent = AgentProcess(
            settings,
            store,
            leadership,
            dry_run=dry_run,
            full_sync=full,
            echo=typer.echo,
            as_of=as_of,
        )
    except Exception as exc:  # a part that cannot be built: say which, do not lead
        _log.error("agent_cannot_start", error=f"{type(exc).__name__}: {exc}")
        typer.echo(f"error: cannot start: {exc}", err=True)
        return CANNOT_START
    agent.runtime.sync_progress = sync_progress()  # a live display on a terminal, else logs
    if not once:
        return agent.serve()
    agent.runtime.runs_once()  # the process exits after this cycle: no parts to keep
    previous = agent.install_signals()  # a stop request ends the pass at a checkpoint
    try:
        results = agent.run_once()
    except LeadershipError as exc:  # another agent leads by its lease (its lock is free)
        typer.echo(f"error: {exc}", err=True)
        return CANNOT_START
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [r.job for r in results if not r.ok]
    if failed:
        typer.echo(f"failed jobs: {', '.join(failed)}", err=True)
    return 1 if failed or agent.exit_code else 0


def run(
    once: Annotated[
        bool,
        typer.Option("--once", help="Run every job once in order; exit 1 if any failed."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the planned CRM updates; send nothing anywhere."),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Re-read the whole CRM and compute every figure afresh instead of changes only.",
        ),
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="With --once: run the cycle as of this ISO 8601 instant (a replay, a backfill, "
            "the demo's pinned date).",
        ),
    ] = None,
) -> None:
    """Run the agent: CRM sync, survey ingestion, write-back and alerts on their cadences."""
    when = as_of_value(as_of) if as_of is not None else None
    if when is not None and not once:
        raise fail("--as-of needs --once: a running agent follows the clock")
    settings = cli_settings(config)  # exits 2 (CANNOT_START) on an invalid configuration
    pin_now(when)  # utcnow() answers the replay's instant everywhere, too
    try:
        code = start(settings, once=once, dry_run=dry_run, full=full, as_of=when)
    finally:
        pin_now(None)  # the pinned clock is this pass's alone
    raise typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""
    app.command("run")(run)

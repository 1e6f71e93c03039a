"""``ax-agent alerts silence|unsilence|list|resend``: mute alerts, see what was sent or printed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from agent.alerts.repo import AlertRepo
from agent.cli.common import cli_settings, fail
from agent.core.durations import DurationError, parse_duration
from agent.core.timeutil import parse_instant
from agent.state.store import StateStore

__all__ = ["register"]

alerts_app = typer.Typer(help="Alerts: silences and the outbox.")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Config file (default: config/ax-agent.yaml).")
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(alerts_app, name="alerts")


def _repo(config: Path | None) -> AlertRepo:
    settings = cli_settings(config)
    return AlertRepo(StateStore.open(settings.state_url).engine)


@alerts_app.command("silence")
def silence(
    *,
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 48h, 7d, 2w.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in alerts list).")],
    account: Annotated[str | None, typer.Option("--account", help="CRM account id.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Rule id.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who silences.")] = None,
    config: ConfigOption = None,
) -> None:
    """Mute alerts of an account and/or a rule until the silence expires."""
    if account is None and rule is None:
        typer.echo("give --account ID, --rule ID or both", err=True)
        raise typer.Exit(2)
    try:
        length = parse_duration(duration)
    except DurationError as exc:
        typer.echo(f"--for: {exc}", err=True)
        raise typer.Exit(2) from None
    if not reason.strip():
        typer.echo("--reason must not be empty", err=True)
        raise typer.Exit(2)
    now = datetime.now(UTC)
    silence_id = _repo(config).add_silence(
        rule_id=rule,
        account_id=account,
        reason=reason,
        created_by=by,
        now=now,
        expires_at=now + length,
    )
    typer.echo(f"silence {silence_id} until {(now + length).isoformat(timespec='minutes')}")


@alerts_app.command("unsilence")
def unsilence(
    silence_id: Annotated[int, typer.Argument(help="The id shown by silence / list.")],
    config: ConfigOption = None,
) -> None:
    """Remove a silence now."""
    if not _repo(config).remove_silence(silence_id):
        typer.echo(f"no silence {silence_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"silence {silence_id} removed")


@alerts_app.command("list")
def list_(
    limit: Annotated[int, typer.Option("--limit", help="Recent outbox entries to show.")] = 20,
    status: Annotated[
        str | None, typer.Option("--status", help="Only pending, sent, digested, failed …")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Active silences and the most recent alerts with their delivery status."""
    repo = _repo(config)
    now = datetime.now(UTC)
    silences = repo.silences(now)
    typer.echo(f"silences ({len(silences)} active):")
    for s in silences:
        target = " ".join(
            p
            for p in (
                f"rule={s.rule_id}" if s.rule_id else "",
                f"account={s.account_id}" if s.account_id else "",
            )
            if p
        )
        typer.echo(
            f"  {s.id}  {target}  until {s.expires_at.isoformat(timespec='minutes')}  {s.reason}"
        )
    rows = repo.recent(limit, status)
    typer.echo(f"alerts (latest {len(rows)}; sent: in Slack; printed: only printed, no token):")
    for r in rows:
        error = f"  error: {r.last_error}" if r.last_error else ""
        typer.echo(
            f"  {r.created_at.isoformat(timespec='minutes')}  {r.status:<9} {r.kind:<10} "
            f"{r.rule_id}  {r.subject}  -> {r.channel or '-'} (tries {r.attempts}){error}"
        )
    if any(r.status == "printed" for r in rows):
        typer.echo(
            "printed alerts were never sent to Slack; "
            "`ax-agent alerts resend --since ISO8601` queues them for Slack"
        )


@alerts_app.command("resend")
def resend(
    since: Annotated[
        str, typer.Option("--since", help="ISO 8601: queue alerts printed from then on.")
    ],
    config: ConfigOption = None,
) -> None:
    """Send to Slack the alerts that were only printed (before a Slack token was set)."""
    try:
        start = parse_instant(since)
    except ValueError:
        raise fail(
            f"--since {since!r} is not an ISO 8601 instant (e.g. 2026-06-01T00:00:00Z)"
        ) from None
    count = _repo(config).requeue_printed(start)
    typer.echo(
        f"queued {count} printed alert(s) since {start.isoformat()}; "
        "the next delivery sends them (`ax-agent run --once` or the running agent)"
    )

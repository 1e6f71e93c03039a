"""``ax-agent rules validate`` and ``ax-agent rules test``: check rule files, dry-run them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from agent.alerts.compose import alert_content
from agent.alerts.console import render_text
from agent.alerts.setup import routing_from
from agent.cli.common import as_of_value, cli_settings, fail
from agent.config.settings import Settings
from agent.core.document import MetricsDocument
from agent.rules.evaluate import Evaluation, Match, evaluate
from agent.rules.facts import build_inputs, response_facts
from agent.rules.loader import RuleLoadError, RuleSet, load_rules, rule_files
from agent.rules.template import format_value
from agent.sources.folder import FolderError, compute_folder
from agent.state.dialect import normalise_url, sqlite_path
from agent.state.errors import StateError
from agent.state.history import StoredHistory
from agent.state.store import StateStore

__all__ = ["register"]

rules_app = typer.Typer(help="Alert rules: validate the YAML files, dry-run them on CRM data.")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Config file (default: config/ax-agent.yaml).")
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(rules_app, name="rules")


def _load(settings: Settings, path: Path | None) -> RuleSet:
    target = path or settings.rules_dir
    try:
        return load_rules(
            target, channels=set(settings.slack.channels), routes=settings.slack.routes
        )
    except RuleLoadError as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        typer.echo(f"{len(exc.errors)} error(s); no rule was loaded", err=True)
        raise typer.Exit(1) from None


@rules_app.command("validate")
def validate(
    path: Annotated[
        Path | None, typer.Argument(help="A rule file or folder (default: rules_dir).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check every rule file; exit non-zero on any error (each with file:line:column)."""
    settings = cli_settings(config)
    rules = _load(settings, path)
    files = len(rule_files(path or settings.rules_dir))
    enabled = len(rules.enabled())
    typer.echo(f"ok: {len(rules.rules)} rule(s) in {files} file(s), {enabled} enabled")


@rules_app.command("test")
def dry_run(
    crm_dir: Annotated[Path, typer.Option("--crm-dir", help="A plain-file CRM folder.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO 8601 time to evaluate at (default: now).")
    ] = None,
    rules_path: Annotated[Path | None, typer.Option("--rules", help="Rule file or folder.")] = None,
    config: ConfigOption = None,
) -> None:
    """Show which alerts would fire now and their text. Sends nothing, stores nothing.

    Change functions read the plain-file CRM's history in the configured state
    database when it exists (``ax-agent history backfill --crm-dir`` fills it).
    """
    settings = cli_settings(config)
    rules = _load(settings, rules_path)
    when = as_of_value(as_of)
    try:
        computed = compute_folder(crm_dir, as_of=when, config=settings.metrics, with_matches=True)
    except FolderError as exc:
        raise fail(str(exc)) from None
    document = computed.document
    facts = response_facts(computed.matches, settings.slack.loop_closed_field)
    with _history_store(settings) as store:
        history = None if store is None else StoredHistory(store, "files")
        inputs = build_inputs(document, computed.accounts, facts, history=history)
        evaluation = evaluate(rules.enabled(), inputs)
        _print_matches(evaluation, settings, when, document)
    counts = Counter(m.rule.id for m in evaluation.matches)
    summary = ", ".join(f"{r.id}: {counts[r.id]}" for r in rules.enabled())
    typer.echo(
        f"would fire {len(evaluation.matches)} alert(s) as of {when.isoformat()} ({summary})"
    )
    for rule_id, failures in evaluation.errors.items():
        typer.echo(f"warning: {rule_id} could not be evaluated for {failures} subject(s)", err=True)


def _print_matches(
    evaluation: Evaluation, settings: Settings, when: datetime, document: MetricsDocument
) -> None:
    routing = routing_from(settings)
    for match in evaluation.matches:
        notify = match.rule.rule.notify
        content = alert_content(
            match,
            when,
            reason="dry run",
            mention_email=routing.mention(notify, match.account),
            document=document,
        )
        target = routing.destination(notify, match.account)
        where = (
            f"@{target.owner_email} (else {target.channel})"
            if target.owner_email
            else target.channel
        )
        typer.echo(render_text(content, where))
        for line in _changes(match):
            typer.echo(f"  {line}")
        typer.echo("")


@contextmanager
def _history_store(settings: Settings) -> Iterator[StateStore | None]:
    """The configured state database if it exists and is migrated; else None (no history)."""
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


def _changes(match: Match) -> Iterator[str]:
    """``before → after`` of every figure the rule's condition compares with its past."""
    seen: set[str] = set()
    for change in match.rule.when.changes:
        if change.label in seen:
            continue
        seen.add(change.label)
        args = (match.response, match.account, match.portfolio, match.as_of, match.history)
        before, after = change.before(*args), change.after(*args)
        yield f"{change.label}: {format_value(before)} → {format_value(after)}"

"""``ax-agent rules validate`` and ``ax-agent rules test``: check rule files, dry-run them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from agent.alerts.compose import alert_id
from agent.alerts.console import render_text
from agent.alerts.model import OutboxAlert
from agent.alerts.preview import Preview, held_reason, preview_cycle
from agent.alerts.setup import build_pipeline
from agent.cli.common import as_of_value, cli_settings, fail
from agent.config.settings import Settings
from agent.core.compute import without_gc
from agent.rules.evaluate import Match, evaluate
from agent.rules.facts import RuleInputs
from agent.rules.loader import RuleLoadError, RuleSet, load_rules, rule_files
from agent.rules.template import format_value
from agent.sources.folder import FolderError, compute_folder
from agent.state.dialect import normalise_url, sqlite_path
from agent.state.errors import MirrorBusyError, StateError
from agent.state.history import rule_history
from agent.state.store import StateStore
from agent.sync.cycle import Computed, compute_from_state, rule_inputs
from agent.tasks.plan import PlannedTask, plan_lines, plan_tasks, task_rules
from agent.tasks.repo import TaskRepo

__all__ = ["register"]

rules_app = typer.Typer(help="Alert rules: validate the YAML files, dry-run them on CRM data.")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Config file (default: config/ax-agent.yaml).")
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(rules_app, name="rules")


def _load(settings: Settings, path: Path | None, how: str = "pass --rules PATH") -> RuleSet:
    target = path or settings.rules_dir
    if path is None and not target.exists():
        raise fail(
            f"no rules folder {target} (rules_dir) under {Path.cwd()}; "
            f"{how} (a rule file or folder), or set rules_dir in the config"
        )
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
    rules = _load(settings, path, "name it: ax-agent rules validate PATH")
    files = len(rule_files(path or settings.rules_dir))
    enabled = len(rules.enabled())
    typer.echo(f"ok: {len(rules.rules)} rule(s) in {files} file(s), {enabled} enabled")


@rules_app.command("test")
def dry_run(  # noqa: PLR0917  # typer passes each option
    crm_dir: Annotated[
        Path | None,
        typer.Option("--crm-dir", help="A plain-file CRM folder (default: the configured CRM)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO 8601 time to evaluate at (default: now).")
    ] = None,
    rules_path: Annotated[Path | None, typer.Option("--rules", help="Rule file or folder.")] = None,
    rule_id: Annotated[
        str | None, typer.Option("--rule", help="Show only this rule's alerts.")
    ] = None,
    account_id: Annotated[
        str | None, typer.Option("--account", help="Show only this account's alerts.")
    ] = None,
    state_url: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="State database whose alert history, silences and outbox apply "
            "(default: the configured state_url, when it exists).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Show the alerts the next cycle would send, by the real pipeline (realert, silences,
    inhibition, digests) against the given state. Sends nothing, stores nothing."""
    settings = cli_settings(config)
    target = rules_path or settings.rules_dir
    rules = _load(settings, rules_path)
    if rule_id is not None and rule_id not in rules.by_id():
        known = ", ".join(sorted(rules.by_id()))
        raise fail(f"--rule {rule_id!r}: no such rule (known: {known})")
    when = as_of_value(as_of)
    source = _source(settings, crm_dir, state_url)
    # One command over the whole portfolio, like `metrics`: millions of objects that hold
    # no reference cycles (answers, their facts, the alerts and their rows). The cycle
    # collector's passes over them found nothing and took a quarter of the time. They
    # are all freed before it resumes, or its first pass would scan them once more.
    with without_gc():
        try:
            _preview(settings, rules, target, when, source, crm_dir, rule_id, account_id)
        finally:
            if source is not None:
                source.close()


def _preview(  # noqa: PLR0917  # dry_run's options, passed on once
    settings: Settings,
    rules: RuleSet,
    target: Path,
    when: datetime,
    source: StateStore | None,
    crm_dir: Path | None,
    rule_id: str | None,
    account_id: str | None,
) -> None:
    """Compute, run the preview pass and print it; everything it holds goes at return."""
    computed = _computed(settings, crm_dir, source, when)
    plan, history = _stored_context(settings, source, crm_dir)
    inputs = rule_inputs(computed, settings.slack.loop_closed_field, plan, history)
    preview_settings = settings.model_copy(update={"rules_dir": target})
    preview = preview_cycle(
        lambda engine, notifier: build_pipeline(preview_settings, engine, notifier),
        rules,
        inputs,
        when,
        source.engine if source is not None else None,
    )
    crm = "files" if crm_dir is not None else settings.crm
    tasks = _planned_tasks(settings, rules, inputs, when, source=source, crm=crm)
    _show(preview, when, rules, rule_id, account_id, source)
    wanted = [
        t
        for t in tasks
        if (rule_id is None or t.rule_id == rule_id)
        and (account_id is None or t.account_id == account_id)
    ]
    for line in plan_lines(wanted, crm):
        typer.echo(line)


def _planned_tasks(
    settings: Settings,
    rules: RuleSet,
    inputs: RuleInputs,
    when: datetime,
    *,
    source: StateStore | None,
    crm: str,
) -> list[PlannedTask]:
    """The CRM tasks the next cycle would create (none the state already holds)."""
    chosen = task_rules(rules.enabled())
    if not chosen:
        return []
    matches = evaluate(chosen, inputs).matches
    repo = TaskRepo(source.engine, crm) if source is not None else None
    return plan_tasks(
        matches,
        known=repo.known(f"{m.rule.id}:{m.subject}" for m in matches) if repo else set(),
        recent=repo.recent(r.id for r in chosen) if repo else {},
        now=when,
        default_due=timedelta(hours=settings.metrics.loop_sla_hours),
        fallback_owner=settings.tasks.fallback_owner_email,
    )


def _source(settings: Settings, crm_dir: Path | None, url: str | None) -> StateStore | None:
    """The state database to preview against (read only), or None for a first run."""
    chosen = url or settings.state_url
    try:
        database = sqlite_path(normalise_url(chosen))
        if database is not None and not database.is_file():
            if url is not None:
                raise fail(f"--state: {database} does not exist")
            if crm_dir is None and settings.crm != "files":
                raise fail(
                    f"state database {database} does not exist; run `ax-agent run --once` "
                    "first, or pass --crm-dir"
                )
            return None  # opening would create it: preview as a first run
        return StateStore.open(chosen, migrate_schema=False)
    except StateError as exc:
        raise fail(str(exc)) from None


def _computed(
    settings: Settings, crm_dir: Path | None, source: StateStore | None, when: datetime
) -> Computed:
    folder = crm_dir or (settings.files.path if settings.crm == "files" else None)
    if folder is not None:
        try:
            # the per-contact figures are for write-back: no rule reads them
            return compute_folder(
                folder,
                as_of=when,
                config=settings.metrics,
                with_matches=True,
                contact_figures=False,
            )
        except FolderError as exc:
            raise fail(str(exc)) from None
    assert source is not None  # _source refused a missing state for a vendor CRM
    try:
        computed = compute_from_state(source, settings.crm, when, settings.metrics)
    except MirrorBusyError as exc:
        raise fail(str(exc)) from None
    if not computed.accounts:
        raise fail(
            f"no {settings.crm} accounts in the state database {source.safe_url}; "
            "run `ax-agent run --once` first, or pass --crm-dir"
        )
    return computed


def _stored_context(
    settings: Settings, source: StateStore | None, crm_dir: Path | None
) -> tuple[dict[str, Any] | None, Any]:
    """The stored coverage plan and figure history the real alerts job gives the rules."""
    if source is None:
        return None, None
    crm = "files" if crm_dir is not None else settings.crm
    try:
        return source.survey_plan_summary(crm), rule_history(source, crm, settings.history)
    except SQLAlchemyError:  # an older schema without them: the rules see null, as a new agent
        return None, None


def _show(  # noqa: PLR0917  # one call site, every argument a different kind
    preview: Preview,
    when: datetime,
    rules: RuleSet,
    rule_id: str | None,
    account_id: str | None,
    source: StateStore | None,
) -> None:
    def wanted(rule: str, account: str | None) -> bool:
        return (rule_id is None or rule == rule_id) and (
            account_id is None or account == account_id
        )

    shown = [a for a in preview.sent if _alert_wanted(a, preview, wanted)]
    matches = {alert_id(d.match, when): d.match for d in preview.decisions if d.match is not None}
    for alert in shown:
        typer.echo(render_text(alert.content, _where(alert)))
        match = matches.get(alert.alert_id)
        for line in _changes(match) if match is not None else ():
            typer.echo(f"  {line}")
        typer.echo("")
    held = [d for d in preview.held if wanted(d.rule_id, d.account_id)]
    for decision in held:
        typer.echo(f"held: {decision.rule_id} {decision.subject}: {held_reason(decision)}")
    counts = Counter(
        c.rule_id
        for a in shown
        for c in (preview.members.get(a.alert_id) or (a.content,))
        if wanted(c.rule_id, c.account.id if c.account is not None else None)
    )
    summary = ", ".join(f"{r.id}: {counts[r.id]}" for r in rules.enabled() if counts[r.id])
    against = (
        f"state {source.safe_url} ({preview.known_states} alert state(s), "
        f"{preview.known_silences} active silence(s))"
        if source is not None
        else "no state (a first run)"
    )
    narrowed = " ".join(
        p
        for p in (
            f"--rule {rule_id}" if rule_id else "",
            f"--account {account_id}" if account_id else "",
        )
        if p
    )
    typer.echo(
        f"would send {len(shown)} message(s) for {sum(counts.values())} alert(s) as of "
        f"{when.isoformat()} ({summary or 'none'}); "
        f"held {len(held)}; against {against}" + (f"; only {narrowed}" if narrowed else "")
    )
    for rule, failures in preview.report.evaluation_errors.items():
        typer.echo(f"warning: {rule} could not be evaluated for {failures} subject(s)", err=True)


def _alert_wanted(
    alert: OutboxAlert, preview: Preview, wanted: Callable[[str, str | None], bool]
) -> bool:
    """Whether the alert (or, for a digest, any alert it stands for) is asked for."""
    contents = preview.members.get(alert.alert_id) or (alert.content,)
    return any(wanted(c.rule_id, c.account.id if c.account is not None else None) for c in contents)


def _where(alert: OutboxAlert) -> str:
    target = alert.destination
    return (
        f"@{target.owner_email} (else {target.channel})" if target.owner_email else target.channel
    )


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

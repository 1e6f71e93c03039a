"""``ax-agent plan coverage``: who to survey next, from the largest uncovered accounts down."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agent.cli.common import AsOfOption, ConfigOption, as_of_value, cli_settings, fail
from agent.config.settings import Settings
from agent.core.plan import CoveragePlan, PlanOptions
from agent.core.rounding import format_number
from agent.report.present import fmt
from agent.sources.folder import FolderError
from agent.state.dialect import normalise_url, sqlite_path
from agent.state.errors import MirrorBusyError, StateError
from agent.state.store import StateStore
from agent.sync.coverage import options_from, plan_for_folder, plan_for_state

__all__ = ["register"]

plan_app = typer.Typer(
    help="Plans that turn figures into work: who to survey next.", no_args_is_help=True
)


class PlanFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@plan_app.command("coverage")
def coverage(  # noqa: PLR0917  # typer maps each option to a parameter
    crm_dir: Annotated[
        Path | None,
        typer.Option("--crm-dir", help="Plain-file CRM folder (default: the configured CRM)."),
    ] = None,
    as_of: AsOfOption = None,
    target: Annotated[
        float | None,
        typer.Option("--target", min=0.0, max=1.0, help="Revenue coverage to reach (0.8 = 80 %)."),
    ] = None,
    per_account: Annotated[
        int | None, typer.Option("--per-account", min=1, help="Contacts per planned account.")
    ] = None,
    fatigue_days: Annotated[
        int | None,
        typer.Option("--fatigue-days", min=0, help="Skip contacts who answered this recently."),
    ] = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top", min=0, help="Covered accounts (largest first) checked for tier gaps."
        ),
    ] = None,
    output: Annotated[
        PlanFormat, typer.Option("--format", help="table, json or csv (one row per contact).")
    ] = PlanFormat.table,
    config: ConfigOption = None,
) -> None:
    """The revenue-first coverage plan: which contacts to survey to reach the target."""
    when = as_of_value(as_of)
    settings = cli_settings(config)
    options = options_from(
        settings.plan,
        target=target,
        per_account=per_account,
        fatigue_days=fatigue_days,
        top=top,
    )
    plan = _plan(crm_dir, settings, when, options)
    if output is PlanFormat.json:
        typer.echo(json.dumps(plan.to_json_obj(), indent=1, ensure_ascii=False))
    elif output is PlanFormat.csv:
        typer.echo(plan_csv(plan), nl=False)
    else:
        render_plan(plan, Console())


def _plan(
    crm_dir: Path | None, settings: Settings, when: datetime, options: PlanOptions
) -> CoveragePlan:
    folder = crm_dir or (settings.files.path if settings.crm == "files" else None)
    if folder is not None:
        try:
            return plan_for_folder(folder, when, settings.metrics, options)[1]
        except FolderError as exc:
            raise fail(str(exc)) from None
    try:
        database = sqlite_path(normalise_url(settings.state_url))
        if database is not None and not database.is_file():  # opening would create it
            raise StateError(f"state database {database} does not exist")
        store = StateStore.open(settings.state_url, migrate_schema=False)
    except StateError as exc:
        raise fail(f"{exc}; run `ax-agent run --once` first, or pass --crm-dir") from None
    with store:
        try:
            return plan_for_state(store, settings.crm, when, settings.metrics, options)[1]
        except MirrorBusyError as exc:
            raise fail(str(exc)) from None


_CSV_COLUMNS = (
    "kind",
    "account_id",
    "account_name",
    "revenue",
    "cumulative_coverage",
    "chance",
    "contact_id",
    "email",
    "tier",
)


def plan_csv(plan: CoveragePlan) -> str:
    """One row per contact to survey: planned accounts first, then tier gaps."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for account in plan.accounts:
        for c in account.contacts:
            writer.writerow(
                [
                    "plan",
                    account.id,
                    account.name,
                    account.revenue,
                    account.cumulative_coverage,
                    account.chance,
                    c.id,
                    c.email,
                    c.tier,
                ]
            )
    for gap in plan.tier_gaps:
        for c in gap.contacts:
            writer.writerow(["tier_gap", gap.account_id, "", "", "", "", c.id, c.email, c.tier])
    return out.getvalue()


def render_plan(plan: CoveragePlan, console: Console) -> None:
    """The plan for a person: the headline, the accounts in order, the tier gaps."""
    console.print(
        f"Revenue coverage now {fmt_pct(plan.coverage_now)}; target {fmt_pct(plan.target)}. "
        f"Survey {plan.planned_contacts} contact(s) at {len(plan.accounts)} account(s): "
        f"{fmt_pct(plan.coverage_planned)} if all answer, "
        f"{fmt_pct(plan.coverage_expected)} expected. As of {plan.as_of:%Y-%m-%d %H:%M} UTC.",
        soft_wrap=True,
    )
    table = Table(title="Accounts to survey, largest revenue first")
    for name in ("#", "account", "revenue", "coverage after", "chance", "contacts (tiers)"):
        table.add_column(name, justify="right" if name in {"#", "revenue", "chance"} else "left")
    for rank, a in enumerate(plan.accounts, start=1):
        who = f"{len(a.contacts)}: " + ", ".join(c.tier for c in a.contacts)
        table.add_row(
            str(rank),
            f"{a.name} ({a.id})",
            format_number(a.revenue, 0),
            fmt_pct(a.cumulative_coverage),
            fmt_pct(a.chance),
            who,
        )
    console.print(table)
    if plan.tier_gaps:
        gaps = Table(title="Tier gaps among the largest covered accounts")
        for name in ("account", "missing tiers", "contacts"):
            gaps.add_column(name)
        for g in plan.tier_gaps:
            who = ", ".join(f"{c.email} ({c.tier})" for c in g.contacts) or "no eligible contact"
            gaps.add_row(g.account_id, ", ".join(g.missing_tiers), who)
        console.print(gaps)
    console.print("Every contact with its email: --format csv or --format json.")
    if plan.skipped:
        skipped = ", ".join(f"{a} ({r})" for a, r in plan.skipped)
        console.print(f"Skipped: {skipped}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``plan coverage`` to ``app``."""
    app.add_typer(plan_app, name="plan")


def fmt_pct(value: float | None) -> str:
    """A ratio as a percentage, rounded as every figure a person sees."""
    return fmt(value, percent=True)

"""``ax-agent crm …``: create the agent's CRM fields and check a CRM is ready for write-back.

The CRM name selects an entry of ``PROVISIONERS`` / ``CONNECTORS``; everything else
(loading settings, reporting problems, turning vendor errors into exit codes) is
shared. A CRM joins the group by adding its two entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from agent.cli.common import cli_settings
from agent.cli.hubspot_cmd import provision_hubspot
from agent.config.settings import ConfigError, Settings
from agent.core.contract import FieldSpec
from agent.core.ports import CrmConnector, FieldProblem
from connectors.common.errors import VendorError

__all__ = ["CONNECTORS", "PROVISIONERS", "Provisioner", "register"]

T = TypeVar("T")

#: ``(settings, print_only) -> exit code``: creates (or, with ``--print``, lists) the fields.
Provisioner = Callable[[Settings, bool], int]


def _salesforce_connector(settings: Settings) -> CrmConnector:
    from connectors.salesforce import from_settings  # noqa: PLC0415  # load the SDK only when used

    return from_settings(settings.salesforce, settings.fields.specs())


def _salesforce_provision(settings: Settings, print_only: bool) -> int:
    from connectors.salesforce import client_from_settings  # noqa: PLC0415  # as above
    from connectors.salesforce.provision import (  # noqa: PLC0415  # as above
        PERMISSION_SET,
        TASK_KEY,
        definitions,
        provision,
    )

    specs = settings.fields.specs()
    tasks = settings.tasks.enabled
    if print_only:
        typer.echo("Salesforce custom fields ax-agent writes (created when missing):")
        for definition in definitions(specs):
            typer.echo(f"  {definition.summary()}")
        if tasks:
            typer.echo(f"  {TASK_KEY:<40} Text(255) external id (the alert key of its tasks)")
        typer.echo(f"Permission set {PERMISSION_SET} grants read and edit access to them.")
        return 0
    report = provision(client_from_settings(settings.salesforce), specs, task_key=tasks)
    _listing("created", report.created)
    _listing("already there", report.existing)
    for name, why in sorted(report.failed.items()):
        typer.echo(f"  failed: {name}: {why}", err=True)
    if report.permission_set:
        typer.echo(
            f"Assign permission set {report.permission_set} to the integration user, "
            "then run `ax-agent crm check salesforce`."
        )
    return 0 if report.ok else 1


def _hubspot_connector(settings: Settings) -> CrmConnector:
    from connectors.hubspot import from_settings  # noqa: PLC0415  # load the SDK only when used

    return from_settings(settings.hubspot, settings.fields.specs())


def _hubspot_provision(settings: Settings, print_only: bool) -> int:
    return provision_hubspot(settings, print_only)


PROVISIONERS: dict[str, Provisioner] = {
    "salesforce": _salesforce_provision,
    "hubspot": _hubspot_provision,
}
CONNECTORS: dict[str, Callable[[Settings], CrmConnector]] = {
    "salesforce": _salesforce_connector,
    "hubspot": _hubspot_connector,
}

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default: AX_CONFIG or config/ax-agent.yaml)."),
]
CrmArgument = Annotated[str, typer.Argument(help="The CRM: salesforce or hubspot.")]


def _listing(label: str, names: Sequence[str]) -> None:
    if names:
        typer.echo(f"{label} ({len(names)}):")
        for name in names:
            typer.echo(f"  {name}")


def _pick(table: Mapping[str, T], crm: str, what: str) -> T:
    entry = table.get(crm.lower())
    if entry is None:
        known = ", ".join(sorted(table)) or "none"
        typer.echo(f"ax-agent crm {what}: unknown CRM {crm!r} (known: {known})", err=True)
        raise typer.Exit(2)
    return entry


def _run(action: Callable[[], int]) -> None:
    """Turn configuration and vendor failures into a message and an exit code."""
    try:
        code = action()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except VendorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def report_problems(crm: str, specs: Sequence[FieldSpec], problems: Sequence[FieldProblem]) -> int:
    """Print the outcome of a field check; 0 when write-back can go ahead."""
    if not problems:
        typer.echo(f"{crm}: all {len(specs)} fields are present, updateable and compatible.")
        return 0
    typer.echo(f"{crm}: {len(problems)} field problem(s); write-back stays off until fixed:")
    for problem in problems:
        typer.echo(f"  {problem}")
    return 1


def _check_tasks(settings: Settings, connector: CrmConnector) -> int:
    """The CRM's task list can take the agent's tasks (``tasks.enabled``); 0 when it can."""
    make = getattr(connector, "task_crm", None)
    if not settings.tasks.enabled or not callable(make):
        return 0
    problems = make().check_tasks()
    if not problems:
        typer.echo(f"{connector.name}: tasks can be created (alert-key field present).")
        return 0
    typer.echo(f"{connector.name}: {len(problems)} task problem(s); tasks stay pending:")
    for problem in problems:
        typer.echo(f"  {problem}")
    return 1


def register(app: typer.Typer) -> None:
    """Add the ``crm`` group to ``app``."""
    crm_app = typer.Typer(help="Set up and check the CRM connection.", no_args_is_help=True)

    @crm_app.command("provision")
    def provision_cmd(
        crm: CrmArgument,
        print_only: Annotated[
            bool, typer.Option("--print", help="List the fields instead of creating them.")
        ] = False,
        config: ConfigOption = None,
    ) -> None:
        """Create the agent's custom fields in the CRM (only those missing)."""
        provisioner = _pick(PROVISIONERS, crm, "provision")
        _run(lambda: provisioner(cli_settings(config), print_only))

    @crm_app.command("check")
    def check_cmd(crm: CrmArgument, config: ConfigOption = None) -> None:
        """Check every mapped field exists, is updateable and has a compatible type."""
        build = _pick(CONNECTORS, crm, "check")

        def check() -> int:
            settings = cli_settings(config)
            specs = settings.fields.specs()
            connector = build(settings)
            code = report_problems(crm, specs, connector.check_fields(specs))
            return max(code, _check_tasks(settings, connector))

        _run(check)

    app.add_typer(crm_app, name="crm")

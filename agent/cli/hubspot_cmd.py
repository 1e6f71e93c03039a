"""HubSpot's part of the ``crm`` group: ``ax-agent crm provision hubspot [--print]``.

``agent.cli.crm_cmd`` dispatches on the CRM name to ``provision_hubspot``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import typer

from agent.config.settings import ConfigError, Settings
from agent.core.contract import ObjectKind
from agent.core.ports import FieldUpdate
from connectors.common.errors import VendorError

__all__ = ["planned_update_lines", "provision_hubspot"]


def provision_hubspot(
    settings: Settings,
    print_only: bool,
    *,
    connector: Any = None,
    echo: Callable[[str], None] = typer.echo,
) -> int:
    """Create the agent's property group and properties in HubSpot; 0 when all is in place.

    With ``print_only`` it only reads the portal and says what it would do.
    """
    from connectors.hubspot import from_settings  # noqa: PLC0415  # load the SDK only when asked for

    specs = settings.fields.specs()
    try:
        hubspot = connector or from_settings(settings.hubspot, specs)
        plan = hubspot.plan_provisioning(specs, tasks=settings.tasks.enabled)
        for line in plan.lines():
            echo(
                ("would " if print_only and not line.startswith(("cannot", "nothing")) else "")
                + line
            )
        if print_only:
            return 1 if plan.conflicts else 0
        result = hubspot.apply_provisioning(plan)
        for line in result.failed:
            echo(f"failed: {line}")
        remaining = hubspot.check_fields(specs)
    except ConfigError as exc:
        echo(str(exc))
        return 2
    except VendorError as exc:
        echo(f"HubSpot refused: {exc}")
        return 1
    for problem in remaining:
        echo(f"still wrong: {problem}")
    return 1 if remaining or result.failed else 0


def planned_update_lines(
    connector: Any, obj: ObjectKind, updates: Sequence[FieldUpdate]
) -> list[str]:
    """``--dry-run``: each batch request HubSpot would get, as one JSON line, sending nothing."""
    size = connector.max_write_batch
    return [
        json.dumps(connector.preview(obj, updates[i : i + size]), sort_keys=True)
        for i in range(0, len(updates), size)
    ]

"""Building the configured connectors: the only place agent code picks a vendor.

Vendor packages are imported only when configured, so the plain-file default never
loads an SDK it does not use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from agent.alerts.console import ConsoleNotifier
from agent.alerts.deliver import Notifier
from agent.alerts.interactivity import LoopCloser
from agent.alerts.repo import AlertRepo
from agent.config.settings import Settings
from agent.core.ports import CrmConnector, SurveySource, TaskCrm
from agent.sources.files import FilesCrm, FilesSurveys
from agent.sources.filetasks import FilesTasks

__all__ = [
    "build_crm",
    "build_interactivity",
    "build_notifier",
    "build_survey_sources",
    "build_task_crm",
    "shipped_rules_dir",
]


def build_crm(settings: Settings, *, dry_run: bool = False) -> CrmConnector:
    """The CRM connector ``settings.crm`` names."""
    if settings.crm == "salesforce":
        from connectors import salesforce  # noqa: PLC0415  # load the SDK only when configured

        return salesforce.from_settings(
            settings.salesforce, settings.fields.specs(), dry_run=dry_run
        )
    if settings.crm == "hubspot":
        from connectors import hubspot  # noqa: PLC0415  # as above

        return hubspot.from_settings(settings.hubspot, settings.fields.specs())
    return FilesCrm(settings.files.path)


def build_task_crm(settings: Settings, crm: CrmConnector) -> TaskCrm | None:
    """The configured CRM's task list, or None when tasks are off (``tasks.enabled``)."""
    if not settings.tasks.enabled:
        return None
    if settings.crm == "files":
        return FilesTasks(settings.files.path)
    inner = getattr(crm, "inner", crm)
    make = getattr(inner, "task_crm", None)
    return make() if callable(make) else None


def build_survey_sources(settings: Settings, as_of: datetime) -> list[SurveySource]:
    """Every configured survey source: the CRM folder's files, the CRMs' survey objects."""
    sources: list[SurveySource] = []
    if settings.crm == "files":
        sources.append(FilesSurveys(settings.files.path, as_of))
    if settings.salesforce.survey.source != "none":
        from connectors import salesforce  # noqa: PLC0415  # load the SDK only when configured

        source = salesforce.survey_source_from_settings(settings.salesforce)
        if source is not None:
            sources.append(source)
    if settings.hubspot.surveys.enabled:
        from connectors import hubspot  # noqa: PLC0415  # as above

        sources.append(hubspot.survey_source_from_settings(settings.hubspot))
    return sources


def build_notifier(settings: Settings, echo: Callable[[str], None] = print) -> Notifier:
    """Slack when a bot token is configured, else the console (same content, printed)."""
    if settings.slack.bot_token is None:
        return ConsoleNotifier(echo)
    from agent.report.digest import driver_chart  # noqa: PLC0415  # matplotlib on use
    from connectors.slack.limits import SlackLimits  # noqa: PLC0415  # SDK on use
    from connectors.slack.notifier import SlackNotifier, make_client  # noqa: PLC0415  # SDK on use

    limits = SlackLimits(
        post_per_second=settings.slack.post_per_second,
        per_minute=settings.slack.method_limits,
    )
    return SlackNotifier(make_client(settings.slack), draw_chart=driver_chart, limits=limits)


def build_interactivity(
    settings: Settings, engine: Engine, notifier: Notifier, deliver_now: Callable[[], object]
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]] | None:
    """The WSGI app of Slack's "Close loop" button; None unless Slack is fully configured.

    ``deliver_now`` is how the message update gets sent (the scheduler's outbox job).
    """
    slack = settings.slack
    if slack.signing_secret is None or slack.bot_token is None:
        return None
    from connectors.slack.interactivity import (  # noqa: PLC0415  # SDK on use
        InteractivityHandler,
        wsgi_app,
    )

    closer = LoopCloser(
        AlertRepo(engine),
        notifier,
        loop_sla=timedelta(hours=settings.metrics.loop_sla_hours),
        deliver_now=deliver_now,
    )
    return wsgi_app(InteractivityHandler(slack.signing_secret.get_secret_value(), closer))


def shipped_rules_dir(configured: Path) -> Path:
    """The configured rules folder, or the rules shipped beside the package when it is absent."""
    if configured.exists():
        return configured
    shipped = Path(__file__).resolve().parents[2] / "rules"  # agent/sync/ -> the checkout
    return shipped if shipped.is_dir() else configured

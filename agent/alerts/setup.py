"""Build the alerting pipeline from the settings: one place for the wiring."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine

from agent.alerts.deliver import Notifier
from agent.alerts.pipeline import AlertPipeline
from agent.alerts.repo import AlertRepo
from agent.alerts.routing import Routing
from agent.config.settings import Settings
from agent.rules.registry import RuleRegistry

__all__ = ["build_pipeline", "crm_link", "routing_from"]


def crm_link(template: str | None) -> Callable[[str], str | None] | None:
    """``https://crm.example/{id}`` -> a function from account id to its record's URL."""
    if not template:
        return None
    return lambda account_id: template.replace("{id}", account_id)


def routing_from(settings: Settings) -> Routing:
    slack = settings.slack
    return Routing(
        channels=slack.channels,
        default_channel=slack.default_channel,
        routes=slack.routes,
        mention_owner=slack.mention_owner,
    )


def build_pipeline(settings: Settings, engine: Engine, notifier: Notifier) -> AlertPipeline:
    """The pipeline the ``run`` job calls once per cycle (``pipeline.run(inputs, now)``)."""
    slack = settings.slack
    registry = RuleRegistry(settings.rules_dir, channels=set(slack.channels), routes=slack.routes)
    routing = routing_from(settings)
    return AlertPipeline(
        AlertRepo(engine),
        registry,
        routing,
        notifier,
        admin_channel=routing.channel(slack.admin_channel),
        digest_threshold=slack.digest_threshold,
        loop_sla=timedelta(hours=settings.metrics.loop_sla_hours),
        crm_link=crm_link(slack.crm_url_template),
    )

"""Building the HubSpot connector (and survey source) from HubSpot's own settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.core.contract import FieldSpec, default_field_specs
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.session import connect
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.surveys import HubSpotSurveySource

__all__ = ["from_settings", "survey_source_from_settings"]


def from_settings(
    settings: HubSpotSettings,
    fields: Sequence[FieldSpec] | None = None,
    **session_options: Any,
) -> HubSpotConnector:
    """The connector for ``settings`` writing ``fields`` (DOMAIN.md's table when None).

    ``session_options`` go to ``connect`` (fake clocks for tests and benchmarks).
    """
    session = connect(settings, **session_options)
    specs = tuple(fields) if fields is not None else default_field_specs()
    return HubSpotConnector(session, settings, specs)


def survey_source_from_settings(
    settings: HubSpotSettings, **session_options: Any
) -> HubSpotSurveySource:
    """HubSpot feedback surveys as a survey source, whatever the CRM is."""
    session = connect(settings, **session_options)
    return HubSpotSurveySource(
        apis=session.apis,
        transport=session.transport,
        settings=settings,
        clock=session.clock,
    )

"""HubSpot: companies and contacts, property provisioning, batch write-back, feedback surveys.

Construct with ``from_settings(settings)``; the connector implements
``agent.core.ports.CrmConnector`` and hands out the portal's ``SurveySource``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.config.settings import Settings
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.provision import ProvisionPlan, ProvisionResult
from connectors.hubspot.session import HubSpotSession, connect
from connectors.hubspot.surveys import HubSpotSurveySource

__all__ = [
    "HubSpotConnector",
    "HubSpotSession",
    "HubSpotSurveySource",
    "ProvisionPlan",
    "ProvisionResult",
    "connect",
    "from_settings",
    "survey_source_from_settings",
]


def from_settings(settings: Settings, **session_options: Any) -> HubSpotConnector:
    """The connector for ``settings.hubspot`` writing ``settings.fields``' mapped fields.

    ``session_options`` go to ``connect`` (fake clocks for tests and benchmarks).
    """
    session = connect(settings.hubspot, **session_options)
    return HubSpotConnector(session, settings.hubspot, settings.fields.specs())


def survey_source_from_settings(settings: Settings, **session_options: Any) -> HubSpotSurveySource:
    """HubSpot feedback surveys as a survey source, whatever the CRM is."""
    session = connect(settings.hubspot, **session_options)
    return HubSpotSurveySource(
        apis=session.apis,
        transport=session.transport,
        settings=settings.hubspot,
        clock=session.clock,
    )


if TYPE_CHECKING:
    from agent.core.ports import CrmConnector, SurveySource

    def _conforms(
        connector: HubSpotConnector, source: HubSpotSurveySource
    ) -> tuple[CrmConnector, SurveySource]:
        """mypy checks here that both implement the agent's ports."""
        return connector, source

"""HubSpot: companies and contacts, property provisioning, batch write-back, feedback surveys.

Construct with ``from_settings(settings.hubspot, fields)``; the connector implements
``agent.core.ports.CrmConnector`` and hands out the portal's ``SurveySource``.

The names below load on first use: reading ``connectors.hubspot.settings`` (as the
agent's settings root does) must not import the HubSpot SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.core.lazy import lazy_names

if TYPE_CHECKING:
    from agent.core.ports import CrmConnector, SurveySource
    from connectors.hubspot.connector import HubSpotConnector
    from connectors.hubspot.factory import from_settings, survey_source_from_settings
    from connectors.hubspot.provision import ProvisionPlan, ProvisionResult
    from connectors.hubspot.session import HubSpotSession, connect
    from connectors.hubspot.surveys import HubSpotSurveySource

    def _conforms(
        connector: HubSpotConnector, source: HubSpotSurveySource
    ) -> tuple[CrmConnector, SurveySource]:
        """mypy checks here that both implement the agent's ports."""
        return connector, source


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

_HOMES = {
    "HubSpotConnector": "connectors.hubspot.connector",
    "HubSpotSession": "connectors.hubspot.session",
    "HubSpotSurveySource": "connectors.hubspot.surveys",
    "ProvisionPlan": "connectors.hubspot.provision",
    "ProvisionResult": "connectors.hubspot.provision",
    "connect": "connectors.hubspot.session",
    "from_settings": "connectors.hubspot.factory",
    "survey_source_from_settings": "connectors.hubspot.factory",
}

__getattr__ = lazy_names(__name__, _HOMES)

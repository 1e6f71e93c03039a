"""Salesforce: accounts and contacts in, the agent's figures written back to fields.

Build the connector with ``from_settings(settings.salesforce, fields)``; it implements
``agent.core.ports.CrmConnector``. Provisioning of the agent's custom fields is in
``connectors.salesforce.provision``, an in-memory org for tests and benchmarks in
``tests.salesforce.fake``.

The names below load on first use: reading ``connectors.salesforce.settings`` (as the
agent's settings root does) must not import the Salesforce SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.core.lazy import lazy_names

if TYPE_CHECKING:
    from connectors.salesforce.connector import DRY_RUN, SalesforceConnector
    from connectors.salesforce.factory import (
        client_from_settings,
        from_settings,
        survey_source_from_settings,
    )
    from connectors.salesforce.surveys import SalesforceSurveySource

__all__ = [
    "DRY_RUN",
    "SalesforceConnector",
    "SalesforceSurveySource",
    "client_from_settings",
    "from_settings",
    "survey_source_from_settings",
]

_HOMES = {
    "DRY_RUN": "connectors.salesforce.connector",
    "SalesforceConnector": "connectors.salesforce.connector",
    "SalesforceSurveySource": "connectors.salesforce.surveys",
    "client_from_settings": "connectors.salesforce.factory",
    "from_settings": "connectors.salesforce.factory",
    "survey_source_from_settings": "connectors.salesforce.factory",
}

__getattr__ = lazy_names(__name__, _HOMES)
